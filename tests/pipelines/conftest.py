"""Pipeline tests write user modules to files and (re)load them from source (defined in testkit)."""

from testkit.pipelines import modules, pipe_files  # noqa: F401  (fixtures)
