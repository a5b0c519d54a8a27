# The top-level conftest.py of your tests: makes the ``saq_in_memory`` fixture available.
pytest_plugins = ["litestar_saq.testing"]
