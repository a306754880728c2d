"""Analysis commands of the CLI (``nngeom knots MODEL ...``), one module per analysis.

Every module here defines ``register(app: typer.Typer) -> None`` that adds its command(s) to the
CLI; ``nngeom.cli`` calls each one. A command raises :class:`nngeom.NngeomError` for bad input:
the CLI turns it into one line on stderr and a non-zero exit. Take the model with
``_model.model_argument()``, ``_model.arch_option()`` and ``_model.key_option()``, load it with
``_model.load`` (never plain ``torch.load``), and print / put in the JSON (key ``"architecture"``)
the ``architecture`` line it returns.

Output contract (for scripts):

* ``--json`` output is written only by ``_json.emit(command, payload)``: one line, with
  ``schema_version`` and ``command`` first and ``nonfinite`` last; numbers are numbers, an
  infinite or undefined one is ``null`` and named in ``nonfinite`` (see ``_json``). Each module
  describes its commands' JSON in ``JSON_SCHEMAS`` (command line -> JSON Schema, built with
  ``_json.schema``); ``tests/test_cli_json.py`` validates every command's output against it and
  fails for a ``--json`` command without one.
* A file option accepts the suffixes of one of the tuples in ``_args`` (``MODEL_TYPES``,
  ``INPUT_TYPES``, ``XY_TYPES``, ``SERIES_TYPES``, ``CHAOS_MODEL_TYPES``, ``PLOT_TYPES``), lists
  exactly them in its help (``_args.types_text``) and refuses any other with
  ``_args.file_type``, whose message names them.
"""
