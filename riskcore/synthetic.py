"""A deterministic synthetic source of loan applications with a known true PD.

Every month is generated from its own seed (seed x month), so any month can be rebuilt alone
and gives the same bytes. The true PD is an additive logit of the *observed* columns (plus a
macro term for the shock scenario), so the Bayes-optimal AUC of any rows is computable and a
model can be judged against it. Labels are Bernoulli draws from the true PD; they reach the
landing folder only once their performance window has elapsed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskcore.derivations import years_between
from riskcore.months import add_months, month_index, parse_month

SCENARIOS = ("none", "economic_shock", "new_segment", "data_fault")
TRUTH_COLUMNS = ("true_pd", "defaulted")

EMPLOYMENT = np.array(["salaried", "self_employed", "contractor", "retired", "unemployed"])
HOME = np.array(["own", "mortgage", "rent", "other"])
PURPOSE = np.array(["debt_consolidation", "home_improvement", "car", "education", "medical", "other"])
PURPOSE_P = np.array([0.38, 0.17, 0.18, 0.07, 0.06, 0.14])
CHANNEL = np.array(["branch", "online", "broker", "partner_api"])
TERMS = np.array([24, 36, 48, 60])

# Additive logit effects of categories in the true PD.
EMPLOYMENT_EFFECT = {"salaried": 0.0, "self_employed": 0.30, "contractor": 0.22, "retired": 0.05, "unemployed": 0.75}
HOME_EFFECT = {"own": -0.20, "mortgage": -0.12, "rent": 0.18, "other": 0.25}
PURPOSE_EFFECT = {"debt_consolidation": 0.12, "home_improvement": -0.12, "car": -0.08, "education": 0.05, "medical": 0.25, "other": 0.10}
CHANNEL_EFFECT = {"branch": -0.10, "online": 0.0, "broker": 0.18, "partner_api": 0.35}
TERM_EFFECT = {24: -0.15, 36: 0.0, 48: 0.08, 60: 0.2}


@dataclass(frozen=True)
class Scenario:
    """A drift scenario applied from `start` (a month) onwards."""

    name: str = "none"
    start: str = "2024-06"
    # economic_shock
    income_factor: float = 0.85
    utilisation_shift: float = 0.10
    macro_logit_shift: float = 0.45
    # new_segment
    new_segment_share: float = 0.25
    # data_fault
    fault_share: float = 1.0
    missing_burst: float = 0.35

    def __post_init__(self):
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; choose one of {SCENARIOS}")

    def active(self, month: str) -> bool:
        return self.name != "none" and month_index(month) >= month_index(self.start)


def _month_rng(seed: int, month: str) -> np.random.Generator:
    m = parse_month(month)
    return np.random.default_rng(np.random.SeedSequence([seed, m.year, m.month]))


def _lookup(values: np.ndarray, table: dict) -> np.ndarray:
    return np.array([table[v] for v in values.tolist()], dtype="float64")


def true_logit(df: pd.DataFrame, macro_shift: float = 0.0) -> np.ndarray:
    """The data-generating PD on the logit scale: additive in the applicant's true columns."""
    income = df["annual_income"].to_numpy(dtype="float64")
    util = df["credit_utilisation"].to_numpy(dtype="float64")
    emp_years = df["employment_years"].to_numpy(dtype="float64")
    age = df["applicant_age_years"].to_numpy(dtype="float64")
    history = df["credit_history_years"].to_numpy(dtype="float64")
    loan = df["loan_amount"].to_numpy(dtype="float64")
    term = df["loan_term_months"].to_numpy(dtype="int64")
    logit = (
        -3.05
        + macro_shift
        - 0.55 * np.log(income / 50_000.0)
        + 0.60 * np.log(loan / income / 0.25)
        + np.where(np.isnan(util), 0.35, 2.2 * np.clip(util, 0, 1.5) ** 2 - 0.35)
        + 0.55 * np.log1p(df["delinquencies_2y"].to_numpy(dtype="float64"))
        + 0.16 * np.minimum(df["inquiries_6m"].to_numpy(dtype="float64"), 8)
        + 1.4 * np.clip(df["debt_to_income"].to_numpy(dtype="float64"), 0, 2)
        + np.where(np.isnan(emp_years), 0.25, -0.35 * np.log1p(np.nan_to_num(emp_years)) + 0.3)
        + 0.45 * np.exp(-history / 2.5)
        + 0.0009 * (age - 42.0) ** 2
        - 0.012 * (age - 42.0)
        - 0.25
        - 0.03 * np.minimum(df["num_open_accounts"].to_numpy(dtype="float64"), 15)
        + _lookup(df["employment_type"].to_numpy(), EMPLOYMENT_EFFECT)
        + _lookup(df["home_ownership"].to_numpy(), HOME_EFFECT)
        + _lookup(df["loan_purpose"].to_numpy(), PURPOSE_EFFECT)
        + _lookup(df["channel"].to_numpy(), CHANNEL_EFFECT)
        + np.array([TERM_EFFECT[t] for t in term.tolist()])
    )
    return logit


def _pii(rng: np.random.Generator, n: int, sex: np.ndarray, app_dates: pd.Series, age: np.ndarray) -> dict:
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    female = np.array(list(Person.first_names_female))
    male = np.array(list(Person.first_names_male))
    last = np.array(list(Person.last_names))
    first = np.where(sex == "female", female[rng.integers(0, len(female), n)], male[rng.integers(0, len(male), n)])
    surname = last[rng.integers(0, len(last), n)]
    cities = np.array([c + s for c in ("Spring", "Oak", "River", "Lake", "Maple", "Cedar", "Fair", "Green") for s in ("field", "ville", "ton", "wood", "port")])
    states = np.array(sorted(Address.states_abbr))
    suffix = np.array(list(Address.street_suffixes))
    number = rng.integers(1, 9999, n)
    street = last[rng.integers(0, len(last), n)]
    zips = rng.integers(10000, 99999, n)
    address = (
        pd.Series(number.astype(str))
        + " "
        + street
        + " "
        + suffix[rng.integers(0, len(suffix), n)]
        + ", "
        + cities[rng.integers(0, len(cities), n)]
        + ", "
        + states[rng.integers(0, len(states), n)]
        + " "
        + zips.astype(str)
    )
    # Never-issued SSN areas (000, 666, 900-999): no real person can be named by one.
    area = np.where(rng.random(n) < 0.1, np.where(rng.random(n) < 0.5, 0, 666), rng.integers(900, 1000, n))
    ssn = pd.Series([f"{a:03d}-{g:02d}-{s:04d}" for a, g, s in zip(area, rng.integers(1, 100, n), rng.integers(1, 10000, n))])
    email = (
        pd.Series(first).str.lower()
        + "."
        + pd.Series(surname).str.lower()
        + rng.integers(1, 999, n).astype(str)
        + "@"
        + np.array(["example.com", "example.org", "example.net"])[rng.integers(0, 3, n)]
    )
    # 555-01xx numbers are reserved for fiction.
    phone = pd.Series([f"({a}) 555-01{b:02d}" for a, b in zip(rng.integers(201, 990, n), rng.integers(0, 100, n))])
    days_old = np.floor(age * 365.25 + rng.integers(0, 365, n)).astype("int64")
    dob = (app_dates - pd.to_timedelta(days_old, unit="D")).dt.normalize()
    return {
        "full_name": pd.Series(first) + " " + pd.Series(surname),
        "ssn": ssn,
        "email": email,
        "phone": phone,
        "address": address,
        "date_of_birth": dob,
    }


def _employers(rng: np.random.Generator, n: int, employment: np.ndarray) -> pd.Series:
    from faker.providers.person.en_US import Provider as Person

    last = np.array(list(Person.last_names))
    suffix = np.array(["LLC", "Inc", "Group", "& Sons", "Ltd", "Holdings", "Partners"])
    name = pd.Series(last[rng.integers(0, len(last), n)]) + " " + suffix[rng.integers(0, len(suffix), n)]
    own = np.where(employment == "self_employed", "self-employed", name)
    return pd.Series(np.where(np.isin(employment, ["unemployed", "retired"]), None, own), dtype="object")


def generate_month(seed: int, month: str, rows: int, scenario: Scenario = Scenario()) -> pd.DataFrame:
    """All columns of the landing contract for one month, plus `true_pd` and `defaulted`."""
    rng = _month_rng(seed, month)
    n = rows
    start = pd.Timestamp(parse_month(month))
    days = (pd.Timestamp(add_months(month, 1)) - start).days
    app_dates = pd.Series(start + pd.to_timedelta(np.sort(rng.integers(0, days, n)), unit="D"))

    strength = rng.standard_normal(n)  # latent financial strength: drives the correlations
    age = np.clip(21 + rng.gamma(3.2, 6.5, n), 18, 85).round()
    sex = np.where(rng.random(n) < 0.5, "female", "male")
    p_emp = np.stack([np.full(n, 0.66), np.full(n, 0.13), np.full(n, 0.09), np.where(age >= 62, 0.6, 0.005), np.where(strength < -1.3, 0.10, 0.03)], 1)
    employment = EMPLOYMENT[(p_emp.cumsum(1) / p_emp.sum(1, keepdims=True) > rng.random((n, 1))).argmax(1)]
    emp_years = np.clip(rng.gamma(2.0, 3.0 + 0.08 * (age - 21), n), 0, np.minimum(age - 17, 60)).round(1)
    emp_years = np.where(employment == "unemployed", np.nan, emp_years)
    emp_years = np.where(rng.random(n) < 0.04, np.nan, emp_years)
    income = np.exp(np.log(48_000) + 0.28 * strength + 0.006 * (np.minimum(age, 55) - 35) + rng.normal(0, 0.35, n))
    income = np.where(employment == "unemployed", income * 0.35, income)
    income = np.where(employment == "retired", income * 0.7, income).round(-2).clip(6_000, 2_000_000)
    history = np.clip(rng.gamma(2.2, (age - 18) / 4.0 + 0.5, n), 0, age - 18).round(1)
    p_home = np.stack([np.where(age > 50, 0.35, 0.08), np.where(strength > -0.3, 0.45, 0.2), np.full(n, 0.38), np.full(n, 0.05)], 1)
    home = HOME[(p_home.cumsum(1) / p_home.sum(1, keepdims=True) > rng.random((n, 1))).argmax(1)]
    accounts = rng.poisson(1.5 + history / 3.5)
    util = np.clip(rng.beta(2.0, 4.0, n) + 0.12 * (-strength) + 0.08, 0, 1.4).round(3)
    util = np.where((accounts == 0) | (rng.random(n) < 0.03), np.nan, util)
    delinquencies = rng.poisson(np.exp(-1.6 - 0.7 * strength))
    inquiries = rng.poisson(np.exp(-0.2 - 0.25 * strength))
    dti = np.clip(rng.gamma(2.5, 0.07, n) + 0.05 * (-strength), 0, 3).round(3)
    purpose = PURPOSE[rng.choice(len(PURPOSE), n, p=PURPOSE_P)]
    term = TERMS[rng.choice(4, n, p=[0.15, 0.45, 0.2, 0.2])]
    loan = np.clip(income * np.exp(rng.normal(np.log(0.22), 0.5, n)), 1_000, 200_000).round(-2)
    channel = CHANNEL[rng.choice(3, n, p=[0.35, 0.45, 0.20])]

    df = pd.DataFrame(
        {
            "application_id": [f"APP-{parse_month(month):%Y%m}-{i:06d}" for i in range(1, n + 1)],
            "application_date": app_dates,
            **_pii(rng, n, sex, app_dates, age),
            "applicant_sex": sex,
            "employer_name": _employers(rng, n, employment),
            "annual_income": income,
            "employment_type": employment,
            "employment_years": emp_years,
            "home_ownership": home,
            "credit_history_years": history,
            "num_open_accounts": accounts,
            "credit_utilisation": util,
            "delinquencies_2y": delinquencies,
            "inquiries_6m": inquiries,
            "debt_to_income": dti,
            "loan_amount": loan,
            "loan_term_months": term,
            "loan_purpose": purpose,
            "channel": channel,
        }
    )
    # The true PD uses the age exactly as the contract derives it from the date of birth.
    df["applicant_age_years"] = years_between(df["date_of_birth"], df["application_date"])
    macro, truth = 0.0, df
    # Drawn in every scenario, so a scenario changes only what it names, never the base draws.
    shocked, burst, label_draw = rng.random(n), rng.random((n, 2)), rng.random(n)
    if scenario.active(month):
        if scenario.name == "economic_shock":
            df["annual_income"] = (df["annual_income"] * scenario.income_factor).round(-2)
            df["credit_utilisation"] = (df["credit_utilisation"] + scenario.utilisation_shift).clip(0, 1.5).round(3)
            macro = scenario.macro_logit_shift
        elif scenario.name == "new_segment":
            new = shocked < scenario.new_segment_share
            df.loc[new, "channel"] = "partner_api"
            df.loc[new, "credit_history_years"] = (df.loc[new, "credit_history_years"] * 0.15).round(1)
            df.loc[new, "num_open_accounts"] = np.minimum(df.loc[new, "num_open_accounts"], 1)
            df.loc[new & (df["num_open_accounts"] == 0), "credit_utilisation"] = np.nan
        elif scenario.name == "data_fault":
            truth = df.copy()  # the fault is in the reporting; the applicants' risk is unchanged
            faulty = shocked < scenario.fault_share
            df.loc[faulty, "annual_income"] = (df.loc[faulty, "annual_income"] / 12).round(0)
            df.loc[burst[:, 0] < scenario.missing_burst, "employment_years"] = np.nan
            df.loc[burst[:, 1] < scenario.missing_burst, "credit_utilisation"] = np.nan
    logit = true_logit(truth, macro_shift=macro)
    df["true_pd"] = 1.0 / (1.0 + np.exp(-logit))
    df["defaulted"] = (label_draw < df["true_pd"].to_numpy()).astype("int64")
    return df.drop(columns=["applicant_age_years"])


def outcomes_frame(month_df: pd.DataFrame, month: str, window_months: int) -> pd.DataFrame:
    """The outcome file that collections deliver once the performance window has elapsed."""
    observed = pd.Timestamp(add_months(month, window_months))
    return pd.DataFrame({"application_id": month_df["application_id"], "observed_date": observed, "defaulted": month_df["defaulted"]})


def applications_frame(month_df: pd.DataFrame) -> pd.DataFrame:
    """What the application system delivers: everything but the truth."""
    return month_df.drop(columns=list(TRUTH_COLUMNS))
