"""Analysis commands of the CLI (``nngeom knots MODEL ...``), one module per analysis.

Every module here defines ``register(app: typer.Typer) -> None`` that adds its command(s) to the
CLI; ``nngeom.cli`` calls each one. A command raises :class:`nngeom.NngeomError` for bad input:
the CLI turns it into one line on stderr and a non-zero exit. Take the model with
``_model.model_argument()``, ``_model.arch_option()`` and ``_model.key_option()``, load it with
``_model.load`` (never plain ``torch.load``), and print / put in the JSON (key ``"architecture"``)
the ``architecture`` line it returns.
"""
