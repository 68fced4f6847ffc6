"""Rooted in the ``tests`` package, this conftest makes pytest (in its default ``prepend``
import mode) put the repository root on ``sys.path`` before any test module is imported,
whether the run is ``pytest tests`` or a single file: so that the unit and the property
tests, in folders that are no packages, can ``from tests.builders import ...``."""
