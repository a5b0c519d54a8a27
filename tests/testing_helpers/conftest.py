from litestar_saq.testing import saq_in_memory  # noqa: F401  (fixture for the testing-helper tests)
