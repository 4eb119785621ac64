"""A portfolio: one file that says what a book of loans is scored with and where its data lives.

The pipeline's definitions are built from these files: a bank adds a portfolio by writing a
portfolio file, its contracts and its policies, never Python. Everything here is read and
checked at load, so a wrong file fails before any run, naming the file, the key and what was
expected.

```yaml
name: retail_pd                     # asset key prefix, MLflow model name, ledger subjects
owner: credit-risk@example.com
contracts: {applications: ..., outcomes: ..., features: ..., scores: ...}   # paths, relative to this file
policies: {decision: ..., promotion: ..., monitoring: ...}                  # paths, relative to this file
                                    # (review, rollout, training: optional, the shipped riskcore/policies/ files by default)
calendar:
  performance_window_months: 12
  out_of_time_months: 3
  evaluation_month: last_complete   # or a pinned month, YYYY-MM (a simulated world, a back-test)
locations: {landing: retail_pd, datasets: retail_pd}   # relative to the environment's roots, or URLs
sensitive_attributes: [applicant_sex]                  # may be empty: the fairness policy says what then
allowed_signers: allowed_signers    # public keys of the identities the promotion policy names (git's format)
reviewers: reviewers                # credit officers of the review page: identity and scrypt hash a line (python -m pipelines.review add-officer)
```

`${VAR}` and `${VAR:-default}` in any value are read from the environment at load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from riskcore.contract import ContractError
from riskcore.months import month_label
from riskcore.yamlfile import load_yaml

CONTRACT_KINDS = ("applications", "outcomes", "features", "scores")
POLICY_KINDS = ("decision", "promotion", "monitoring")
OPTIONAL_POLICIES = {
    "review": "review.yaml",
    "rollout": "rollout.yaml",
    "training": "training.yaml",
}  # kind -> the shipped policy (riskcore/policies/) used when the file names none
LAST_COMPLETE = "last_complete"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
KNOWN_KEYS = {"name", "owner", "description", "contracts", "policies", "calendar", "locations", "sensitive_attributes", "allowed_signers", "reviewers"}


class PortfolioError(ContractError):
    """A portfolio file that cannot be used: names the file, the key and what was expected."""


@dataclass(frozen=True)
class Calendar:
    performance_window_months: int = 12
    out_of_time_months: int = 3
    evaluation_month: str | None = None  # None: the last complete month


@dataclass(frozen=True)
class Portfolio:
    name: str
    owner: str
    file: str
    contracts: dict[str, str]
    policies: dict[str, str]
    calendar: Calendar
    landing: str
    datasets: str
    sensitive_attributes: tuple[str, ...] = ()
    description: str = ""
    allowed_signers: str | None = None  # None: no one can sign an approval, rejection or rollback
    reviewers: str | None = None  # None: no one can log in to the review page with a password

    @property
    def model_name(self) -> str:
        return self.name

    def contract(self, kind: str):
        """A contract of this portfolio, loaded (the others follow the applications contract: its id column, its features)."""
        from riskcore.contract import load_contract

        if kind == "applications":
            return load_contract(self.contracts[kind])
        return load_contract(self.contracts[kind], source=self.contract("applications"))


def portfolio_signers(portfolio_file: str, allowed_signers: str | None):
    """A portfolio's allowed-signers file, read now (keys change without a reload of the definitions)."""
    from riskcore.signatures import load_allowed_signers

    if allowed_signers is None:
        raise PortfolioError(portfolio_file, "allowed_signers", "not set: approvals, rejections and rollbacks cannot be verified, so none is accepted")
    try:
        return load_allowed_signers(allowed_signers)
    except ValueError as error:
        raise PortfolioError(portfolio_file, "allowed_signers", str(error)) from None


def _expand(value, file: str, key: str, defaults: dict[str, str]):
    """${VAR} / ${VAR:-default} from the environment, else from the deployment's `defaults`, else the
    file's own default; an unset variable without any default is an error."""
    if isinstance(value, dict):
        return {k: _expand(v, file, f"{key}.{k}" if key else str(k), defaults) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, file, f"{key}[{i}]", defaults) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if name in defaults:
            return defaults[name]
        if default is None:
            raise PortfolioError(file, key, f"environment variable {name} is not set and has no default (write ${{{name}:-default}})")
        return default

    expanded = _VARIABLE.sub(substitute, value)
    if expanded != value and re.fullmatch(r"-?\d+", expanded):
        return int(expanded)
    return expanded


def load_portfolio(path: str | Path, defaults: dict[str, str] | None = None) -> Portfolio:
    """Read and check a portfolio file and every file it names (contracts, policies)."""
    path = Path(path).resolve()
    file = str(path)
    if not path.is_file():
        raise PortfolioError(file, "(file)", "no such portfolio file")
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise PortfolioError(file, "(file)", f"not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise PortfolioError(file, "(file)", "expected a mapping of portfolio keys")
    doc = _expand(raw, file, "", defaults or {})
    unknown = sorted(set(doc) - KNOWN_KEYS)
    if unknown:
        raise PortfolioError(file, unknown[0], f"unknown key; expected one of {', '.join(sorted(KNOWN_KEYS))}")

    def required(key: str, kind: type, expected: str):
        if key not in doc or doc[key] is None:
            raise PortfolioError(file, key, f"required key missing; expected {expected}")
        if not isinstance(doc[key], kind):
            raise PortfolioError(file, key, f"expected {expected}, got {doc[key]!r}")
        return doc[key]

    name = required("name", str, "a lower-case name such as retail_pd")
    if not NAME_PATTERN.match(name):
        raise PortfolioError(
            file, "name", f"{name!r}: expected lower-case letters, digits and _, starting with a letter (it becomes an asset key prefix and a model name)"
        )
    owner = required("owner", str, "the owning team's address")
    contracts = _files(required("contracts", dict, f"a mapping with {', '.join(CONTRACT_KINDS)}"), "contracts", CONTRACT_KINDS, path)
    policies = _files(required("policies", dict, f"a mapping with {', '.join(POLICY_KINDS)}"), "policies", POLICY_KINDS, path)
    calendar = _calendar(doc.get("calendar") or {}, file)
    locations = doc.get("locations") or {}
    if not isinstance(locations, dict) or set(locations) - {"landing", "datasets"}:
        raise PortfolioError(file, "locations", f"expected a mapping with landing and/or datasets, got {locations!r}")
    for key, value in locations.items():
        if not isinstance(value, str) or not value:
            raise PortfolioError(file, f"locations.{key}", f"expected a path or URL, got {value!r}")
    sensitive = doc.get("sensitive_attributes", [])
    if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
        raise PortfolioError(file, "sensitive_attributes", f"expected a list of column names (may be empty), got {sensitive!r}")
    signers = doc.get("allowed_signers")
    if signers is not None and (not isinstance(signers, str) or not signers):
        raise PortfolioError(file, "allowed_signers", f"expected the path of an allowed-signers file, got {signers!r}")
    reviewers = doc.get("reviewers")
    if reviewers is not None and (not isinstance(reviewers, str) or not reviewers):
        raise PortfolioError(file, "reviewers", f"expected the path of a reviewers file, got {reviewers!r}")
    portfolio = Portfolio(
        name=name,
        owner=owner,
        file=file,
        contracts=contracts,
        policies=policies,
        calendar=calendar,
        landing=locations.get("landing", name),
        datasets=locations.get("datasets", name),
        sensitive_attributes=tuple(sensitive),
        description=str(doc.get("description", "")),
        allowed_signers=str((path.parent / signers).resolve()) if signers else None,
        reviewers=str((path.parent / reviewers).resolve()) if reviewers else None,
    )
    _check_files(portfolio)
    return portfolio


def _files(section: dict, key: str, kinds: tuple[str, ...], path: Path) -> dict[str, str]:
    optional = OPTIONAL_POLICIES if key == "policies" else {}
    unknown = sorted(set(section) - set(kinds) - set(optional))
    if unknown:
        singular = {"contracts": "contract", "policies": "policy"}[key]
        raise PortfolioError(str(path), f"{key}.{unknown[0]}", f"unknown {singular} kind; expected {', '.join(kinds)}")
    resolved = {}
    for kind in kinds:
        value = section.get(kind)
        if not isinstance(value, str) or not value:
            raise PortfolioError(str(path), f"{key}.{kind}", f"required key missing; expected a file path (relative to {path.name})")
        target = (path.parent / value).resolve()
        if not target.is_file():
            raise PortfolioError(str(path), f"{key}.{kind}", f"no such file: {value} (looked for {target})")
        resolved[kind] = str(target)
    for kind, shipped in optional.items():
        value = section.get(kind)
        if value is None:
            resolved[kind] = str(Path(__file__).parent / "policies" / shipped)
            continue
        target = (path.parent / value).resolve() if isinstance(value, str) and value else None
        if target is None or not target.is_file():
            raise PortfolioError(str(path), f"{key}.{kind}", f"no such file: {value!r} (a path relative to {path.name}, or leave it out for the shipped one)")
        resolved[kind] = str(target)
    return resolved


def _calendar(section, file: str) -> Calendar:
    if not isinstance(section, dict):
        raise PortfolioError(file, "calendar", f"expected a mapping, got {section!r}")
    unknown = sorted(set(section) - {"performance_window_months", "out_of_time_months", "evaluation_month"})
    if unknown:
        raise PortfolioError(file, f"calendar.{unknown[0]}", "unknown key; expected performance_window_months, out_of_time_months, evaluation_month")
    values = {}
    for key, default, low in (("performance_window_months", 12, 1), ("out_of_time_months", 3, 1)):
        value = section.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise PortfolioError(file, f"calendar.{key}", f"expected a whole number of months >= {low}, got {value!r}")
        values[key] = value
    month = section.get("evaluation_month", LAST_COMPLETE)
    if month != LAST_COMPLETE:
        try:
            month = month_label(str(month))
        except ValueError:
            raise PortfolioError(file, "calendar.evaluation_month", f"expected {LAST_COMPLETE} or a month YYYY-MM, got {month!r}") from None
    return Calendar(evaluation_month=None if month == LAST_COMPLETE else month, **values)


def _check_files(portfolio: Portfolio) -> None:
    """Contracts and policies load, and the sensitive attributes are the contract's."""
    from riskcore.decision_policy import load_policy
    from riskcore.monitoring_policy import load_monitoring_policy
    from riskcore.promotion import load_promotion_policy
    from riskcore.review_policy import load_review_policy
    from riskcore.rollout_policy import load_rollout_policy
    from riskcore.training_policy import load_training_policy

    file = portfolio.file
    for kind in CONTRACT_KINDS:
        try:
            portfolio.contract(kind)
        except ContractError:
            raise
        except (ValueError, KeyError, TypeError) as error:
            raise PortfolioError(file, f"contracts.{kind}", _naming(portfolio.contracts[kind], error)) from None
    loaders = (
        ("decision", load_policy),
        ("promotion", load_promotion_policy),
        ("monitoring", load_monitoring_policy),
        ("review", load_review_policy),
        ("rollout", load_rollout_policy),
        ("training", load_training_policy),
    )
    for kind, loader in loaders:
        try:
            loader(portfolio.policies[kind])
        except (ValueError, KeyError, TypeError) as error:
            raise PortfolioError(file, f"policies.{kind}", _naming(portfolio.policies[kind], error)) from None
    declared = portfolio.contract("applications").columns("sensitive")
    for i, column in enumerate(portfolio.sensitive_attributes):
        if column not in declared:
            raise PortfolioError(
                file,
                f"sensitive_attributes[{i}]",
                f"{column!r} is not a column with role sensitive in the applications contract (those are: {', '.join(declared) or 'none'})",
            )
    if portfolio.allowed_signers is not None and Path(portfolio.allowed_signers).exists():
        portfolio_signers(portfolio.file, portfolio.allowed_signers)  # a malformed key list fails at load, naming its line


def _naming(path: str, error: Exception) -> str:
    """The error of a file the portfolio names, with that file's name said once."""
    text = str(error)
    return text if Path(path).name in text else f"{path}: {text}"


def load_portfolios(paths: list[str | Path], defaults: dict[str, str] | None = None) -> list[Portfolio]:
    """Every portfolio of a deployment; names must differ (they key assets, models and the ledger)."""
    portfolios = [load_portfolio(p, defaults) for p in paths]
    seen: dict[str, str] = {}
    for p in portfolios:
        if p.name in seen:
            raise PortfolioError(p.file, "name", f"{p.name!r} is also the name of {seen[p.name]}: each portfolio needs its own name")
        seen[p.name] = p.file
    return portfolios
