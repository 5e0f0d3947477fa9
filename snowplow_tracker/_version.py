"""Version of this package.

The version is above 1.1.0 so that this package replaces ``snowplow-tracker`` 1.1.0 in an
environment and satisfies dependents' ranges such as ``snowplow-tracker>=1.0.2,<2.0``.
"""

__version_info__ = (1, 2, 0)
__version__ = ".".join(str(x) for x in __version_info__)
__build_version__ = __version__
