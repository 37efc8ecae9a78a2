"""The one C extension: YAML snapshot writing (recorder/compact/_yamlemit.c).

Everything else is declared in pyproject.toml. The extension is optional: without a C compiler
the package still installs, and recorder.compact.snapshot writes YAML with the Python emitter,
which produces the same bytes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "recorder.compact._yamlemit",
            sources=["recorder/compact/_yamlemit.c"],
            optional=True,
        )
    ]
)
