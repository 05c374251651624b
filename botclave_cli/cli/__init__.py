"""The Typer CLI: a thin layer over the library. Nothing imports this package."""
