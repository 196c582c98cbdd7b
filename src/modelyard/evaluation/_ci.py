"""``yard ci init``: pipeline files for GitHub Actions, GitLab CI and Jenkins.

Each pipeline installs the project, trains (registering a new version), validates the data,
runs the gates with a JUnit report the CI system displays, and on the main branch promotes the
new version (``yard gate --promote``), which the registry gates again as a protected alias.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from modelyard.errors import AlreadyExistsError, invalid_param

__all__ = ["CI_SYSTEMS", "render_ci", "write_ci"]

#: system → default output path
CI_SYSTEMS: dict[str, str] = {
    "github": ".github/workflows/modelyard.yml",
    "gitlab": ".gitlab-ci.yml",
    "jenkins": "Jenkinsfile",
}

_GITHUB = """\
# Written by `yard ci init github`: train, validate, gate and (on main) promote {model}.
# Set the repository secret YARD_URI to the team store (postgresql://...); blobs: YARD_BLOB_URI.
name: modelyard
on:
  push:
    branches: [main]
  pull_request:
jobs:
  model:
    runs-on: ubuntu-latest
    env:
      YARD_URI: ${{{{ secrets.YARD_URI }}}}
      YARD_BLOB_URI: ${{{{ secrets.YARD_BLOB_URI }}}}
    permissions:
      contents: read
      checks: write
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - name: Install
        run: pip install .
      - name: Train
        run: {train}
      - name: Validate data
        run: {validate}
      - name: Gate
        if: github.ref != 'refs/heads/main'
        run: {gate}
      - name: Gate and promote
        if: github.ref == 'refs/heads/main'
        run: {promote}
      - name: Publish gate results
        if: always()
        uses: mikepenz/action-junit-report@v4
        with:
          report_paths: reports/*.xml
          check_name: modelyard gates
"""

_GITLAB = """\
# Written by `yard ci init gitlab`: train, validate, gate and (on main) promote {model}.
# Set the CI/CD variables YARD_URI (postgresql://...) and YARD_BLOB_URI for the team store.
stages:
  - train
  - validate
  - gate
  - promote

default:
  image: python:3.11
  before_script:
    - pip install .

train:
  stage: train
  script:
    - {train}

validate-data:
  stage: validate
  script:
    - mkdir -p reports
    - {validate}
  artifacts:
    when: always
    reports:
      junit: reports/data.xml

gate:
  stage: gate
  script:
    - mkdir -p reports
    - {gate}
  artifacts:
    when: always
    reports:
      junit: reports/gates.xml

promote:
  stage: promote
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  script:
    - {promote}
"""

_JENKINS = """\
// Written by `yard ci init jenkins`: train, validate, gate and (on main) promote {model}.
// Create the credentials 'yard-uri' (secret text: postgresql://...) for the team store.
pipeline {{
    agent any
    environment {{
        YARD_URI = credentials('yard-uri')
    }}
    stages {{
        stage('Install') {{
            steps {{
                sh 'pip install .'
            }}
        }}
        stage('Train') {{
            steps {{
                sh {train_g}
            }}
        }}
        stage('Validate data') {{
            steps {{
                sh 'mkdir -p reports'
                sh {validate_g}
            }}
        }}
        stage('Gate') {{
            when {{
                not {{
                    branch 'main'
                }}
            }}
            steps {{
                sh {gate_g}
            }}
        }}
        stage('Gate and promote') {{
            when {{
                branch 'main'
            }}
            steps {{
                sh {promote_g}
            }}
        }}
    }}
    post {{
        always {{
            junit allowEmptyResults: true, testResults: 'reports/*.xml'
        }}
    }}
}}
"""


def _groovy_str(cmd: str) -> str:
    return "'" + cmd.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_ci(
    system: str,
    *,
    model: str = "churn-clf",
    policy: str = "gates.yaml",
    data: str | None = None,
    data_path: str = "data",
    suite: str = "expectations.yaml",
    train: str = "python train.py",
    alias: str = "production",
) -> str:
    """The pipeline file's text for ``system`` (github, gitlab or jenkins)."""
    if system not in CI_SYSTEMS:
        raise invalid_param("system", "yard ci init", f"one of {sorted(CI_SYSTEMS)}", system)
    q = shlex.quote
    data_opt = f" --data {q(data)}" if data else ""
    gate = f"yard gate {q(model + '@latest')} --policy {q(policy)}{data_opt} --junit reports/gates.xml"
    cmds = {
        "train": train,
        "validate": f"yard validate data {q(data_path)} --suite {q(suite)} --junit reports/data.xml",
        "gate": gate,
        "promote": f"{gate} --promote {q(alias)}",
    }
    if system == "jenkins":
        return _JENKINS.format(model=model, **{f"{k}_g": _groovy_str(v) for k, v in cmds.items()})
    template = _GITHUB if system == "github" else _GITLAB
    return template.format(model=model, **{k: _yaml_scalar(v) for k, v in cmds.items()})


def _yaml_scalar(cmd: str) -> str:
    """A shell command as a YAML plain or quoted scalar."""
    import json

    import yaml

    from modelyard._yaml import load_yaml

    try:
        if load_yaml(f"k: {cmd}", what="CI command") == {"k": cmd}:
            return cmd
    except yaml.YAMLError:  # e.g. "a: b" inside: not a plain scalar
        pass
    return json.dumps(cmd)


def write_ci(
    system: str,
    *,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    **options: str | None,
) -> Path:
    """Write the pipeline file for ``system``; refuses to overwrite unless ``overwrite``."""
    text = render_ci(system, **{k: v for k, v in options.items() if v is not None})
    path = Path(output) if output is not None else Path(CI_SYSTEMS[system])
    if path.exists() and not overwrite:
        raise AlreadyExistsError(
            f"{str(path)!r} exists. Pass --force to overwrite it, or --output to write elsewhere."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
