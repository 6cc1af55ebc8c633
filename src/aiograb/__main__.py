"""``python -m aiograb``: the ``aiograb`` command."""

if __name__ == "__main__":
    from aiograb.cli import run

    run()
