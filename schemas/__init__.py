"""The definitions tdkt ships, installed as the package pipeline.catalog (data only, no code).

Forms (forms/<form>/<version>.yaml), vocabularies (vocab/), rules and criteria by school year
(rules/, criteria/), the finding catalogue (findings.yaml) and the texts written into workbooks
(texts.yaml). pyproject.toml maps this folder onto pipeline.catalog; pipeline.settings finds it
with importlib.resources, in a wheel and in an editable install alike.
"""
