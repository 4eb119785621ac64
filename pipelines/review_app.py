"""The review page: credit officers decide referred and appealed applications.

Flask with server-rendered Jinja2 templates (autoescaped), Flask-WTF forms (every POST carries a
CSRF token), sessions in cookies signed with RISK_REVIEW_SESSION_KEY (HttpOnly, SameSite=Strict),
a Content-Security-Policy that allows the page's own stylesheet and nothing else (no script at
all). Served by gunicorn on 127.0.0.1 (`python -m pipelines.review serve`, `make review`).

Who is logged in: an identity of the portfolio's reviewers file, by its password (salted scrypt),
or, when RISK_REVIEW_IDENTITY_HEADER names one, by that header as set by a trusted proxy in front
(the identity provider's), still only for identities the reviewers file lists. Each decision
records how its officer was authenticated.
"""

from __future__ import annotations

import datetime as dt
import os

from flask import Flask, abort, redirect, render_template, request, session, url_for
from flask_wtf import CSRFProtect, FlaskForm
from wtforms import PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from pipelines.review import IDENTITY_HEADER_VAR, load_reviewers, portfolio_name, service_attestation, session_key, verify_password

PER_PAGE = 50
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


class LoginForm(FlaskForm):
    identity = StringField("Identity", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class DecisionForm(FlaskForm):
    decision = RadioField("Decision", choices=[("approve", "Approve"), ("decline", "Decline")], validators=[DataRequired()])
    reason = SelectField("Reason", validators=[DataRequired()])
    note = TextAreaField("Note (optional; no personal data: the application id identifies the applicant)")


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token: logout, confirm."""


def create_app(portfolio: str | None = None) -> Flask:
    from pipelines.environment import configured_portfolio, current_environment

    name = portfolio_name(portfolio)
    resources = configured_portfolio(name)
    policy = resources.review_policy()
    store = resources.review_store(attest=service_attestation(resources))
    reviewers_file = resources.spec.reviewers
    identity_header = os.environ.get(IDENTITY_HEADER_VAR) or None

    app = Flask(__name__, template_folder="templates/review", static_folder="static")
    app.config.update(
        SECRET_KEY=session_key(),
        SESSION_COOKIE_NAME="risk_review_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=current_environment() == "production" or os.environ.get("RISK_REVIEW_SECURE_COOKIES") == "1",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    CSRFProtect(app)
    reason_choices = [(code, f"{decision}: {code} {text}") for decision, reasons in policy.reasons.items() for code, text in reasons.items()]

    def officer() -> tuple[str, str] | None:
        """(identity, how it was authenticated) of the request, or None."""
        if identity_header:
            who = request.headers.get(identity_header, "").strip()
            return (who, f"proxy-header:{identity_header}") if who and who in load_reviewers(reviewers_file) else None
        who = session.get("officer")
        return (who, session.get("auth_method", "password")) if who and who in load_reviewers(reviewers_file) else None

    def required() -> tuple[str, str]:
        who = officer()
        if who is None:
            if request.method == "GET":
                abort(redirect(url_for("login")))
            abort(401)
        return who

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/login", methods=["GET", "POST"])
    def login():
        form, error = LoginForm(), None
        if form.validate_on_submit():
            identity = form.identity.data.strip()
            if verify_password(form.password.data, load_reviewers(reviewers_file).get(identity)):
                session.clear()  # a fresh session (and CSRF token) at login: nothing carried over from before
                session.permanent = True
                session.update(officer=identity, auth_method="password")
                return redirect(url_for("queue"))
            error = "Wrong identity or password."
        return render_template("login.html", form=form, error=error, portfolio=name), 401 if error else 200

    @app.post("/logout")
    def logout():
        PostForm().validate_on_submit()
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    def queue():
        who, _ = required()
        months = store.months()
        month = request.args.get("month") or (months[-1] if months else "")
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        items, total = store.queue(month, page, PER_PAGE) if month in months else ([], 0)
        pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
        return render_template(
            "queue.html", officer=who, portfolio=name, months=months, month=month, items=items, total=total, page=page, pages=pages, logout=PostForm()
        )

    def show(item_id: int, form: DecisionForm | None = None, error: str | None = None, status: int = 200):
        who, _ = required()
        item = store.item(item_id)
        if item is None:
            abort(404)
        form = form or DecisionForm()
        form.reason.choices = reason_choices
        decided = [d for d in store.decisions_of(item.application_id) if d.item_id == item.id]
        return render_template(
            "application.html",
            officer=who,
            portfolio=name,
            item=item,
            decision=decided[0] if decided else None,
            form=form,
            confirm=PostForm(),
            logout=PostForm(),
            error=error,
            policy=policy,
            reasons={code: text for reasons in policy.reasons.values() for code, text in reasons.items()},
        ), status

    @app.get("/applications/<int:item_id>")
    def application(item_id: int):
        return show(item_id)

    @app.post("/applications/<int:item_id>/decide")
    def decide(item_id: int):
        from riskcore.review import ReviewRefused

        who, how = required()
        form = DecisionForm()
        form.reason.choices = reason_choices
        if not form.validate_on_submit():
            return show(item_id, form, "Choose a decision and a reason.", 400)
        try:
            store.decide(item_id, who, how, form.decision.data, form.reason.data, form.note.data or "")
        except ReviewRefused as refused:
            return show(item_id, form, str(refused), 409)
        return redirect(url_for("application", item_id=item_id))

    @app.post("/applications/<int:item_id>/confirm")
    def confirm(item_id: int):
        from riskcore.review import ReviewRefused

        who, how = required()
        PostForm().validate_on_submit()  # CSRFProtect refused a POST without a valid token before this
        try:
            store.confirm(item_id, who, how)
        except ReviewRefused as refused:
            return show(item_id, None, str(refused), 409)
        return redirect(url_for("application", item_id=item_id))

    return app
