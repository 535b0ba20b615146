"""Package list of tdkt; everything else is in pyproject.toml.

Every pipeline.* subpackage is found here, so a new one is never left out of the wheel; the
definitions under schemas/ are added as pipeline.catalog (pyproject.toml maps the folder and
lists its files). pyproject.toml alone cannot both find packages and add one from elsewhere.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["pipeline", "pipeline.*"]), "pipeline.catalog"])
