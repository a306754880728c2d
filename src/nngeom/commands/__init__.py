"""Analysis commands of the CLI (``nngeom knots MODEL ...``), one module per analysis.

Every module here defines ``register(app: typer.Typer) -> None`` that adds its command(s) to the
CLI; ``nngeom.cli`` calls each one. A command raises :class:`nngeom.NngeomError` for bad input:
the CLI turns it into one line on stderr and a non-zero exit. Load saved models with
``nngeom.modelfile.load_model`` (never plain ``torch.load``).
"""
