"""The audit log, for administrators: who changed what, with before and after."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from campaigns.models import AuditLog
from web import db
from web.permissions import allow

bp = Blueprint("audit_log", __name__, url_prefix="/audit")
PAGE = 50


@bp.route("/")
@allow("audit.view")
def index() -> Any:
    session = db.session()
    page = max(1, request.args.get("page", 1, type=int))
    entity = request.args.get("entity", "").strip()[:80]
    actor = request.args.get("actor", "").strip()[:80]
    query = select(AuditLog)
    if entity:
        query = query.where(AuditLog.entity == entity)
    if actor:
        query = query.where(AuditLog.actor == actor)
    entries = session.scalars(
        query.order_by(AuditLog.id.desc()).offset((page - 1) * PAGE).limit(PAGE + 1)
    ).all()
    entities = session.scalars(select(AuditLog.entity).distinct().order_by(AuditLog.entity)).all()
    return render_template(
        "audit/index.html",
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
        page=page,
        entity=entity,
        actor=actor,
        entities=entities,
    )
