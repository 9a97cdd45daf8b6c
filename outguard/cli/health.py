"""``outguard caller-ids health | tasks | task-note | task-close``: caller-ID health (the
connect-rate early warning) and the remediation tasks it opens, on the store file."""

from __future__ import annotations

from typing import Any

import click

from outguard.cli.common import actor, emit_json, json_option, output, store_options
from outguard.cli.enforce import _key, _percent, step_on_record, with_enforcer
from outguard.cli.parties import caller_ids
from outguard.enforcement.health_ops import task_dict

TASK_COLUMNS = ["id", "caller_id", "state", "cap_factor", "opened_at", "reason"]


def echo_health(body: dict[str, Any]) -> None:
    """The health view for people: the judgement, the task, then one line per day."""
    r, b = body["recent"], body["baseline"]
    click.echo(f"connect rate: {_percent(r['connect_rate'])} over the last window "
               f"({r['answered']}/{r['ended']} ended calls) against "
               f"{_percent(b['connect_rate'])} before ({b['answered']}/{b['ended']})"
               + (f", down {body['drop'] * 100:.0f}%" if body["drop"] is not None else ""))
    click.echo("early warning: " + ("YES, the connect rate dropped sharply"
                                    if body["warning"] else "no"))
    task = body["open_task"]
    if task is not None:
        click.echo(f"THROTTLED: caller-ID caps x {task['cap_factor']:g} while remediation "
                   f"task {task['id']} is {task['state']} "
                   f"(outguard caller-ids task-close {task['id']} --resolution ...)")
        for n, step in enumerate(task["steps"], 1):
            click.echo(f"  {n}. {step}")
    click.echo(f"per day ({body['timezone']}):")
    click.echo("  day         attempts  ended  connect  short  complaints  marks")
    for d in body["days"]:
        click.echo(f"  {d['day']}  {d['attempts']:>8}  {d['ended']:>5}  "
                   f"{_percent(d['connect_rate']):>7}  {_percent(d['short_call_ratio']):>5}  "
                   f"{d['complaints']:>10}  {d['marks']:>5}")


@caller_ids.command("health")
@click.argument("number", required=False)
@click.option("--days", default=7, show_default=True,
              help="Days of figures (one caller ID; at most the days the figures keep).")
@json_option
@store_options
def caller_ids_health(number: str | None, days: int, as_json: bool, config_file: str | None,
                      store_path: str | None) -> None:
    """Caller-ID health: per caller ID the connect rate now against its own history, the
    early warning and its remediation task; with NUMBER, that caller ID's figures per day
    (attempts, connect rate, short-call ratio, complaints, marks) in the policy's zone.

    \b
    Example:
      outguard caller-ids health
      outguard caller-ids health 01088886666 --days 7
    """
    if number is None:
        rows = with_enforcer(config_file, store_path, lambda e: e.health_table())
        output(rows, as_json, ["caller_id", "tenant", "ended", "connect_rate",
                               "baseline_connect_rate", "drop", "warning", "task",
                               "cap_factor"])
        return

    async def job(e: Any) -> dict[str, Any]:
        body: dict[str, Any] = (await e.health(_key("caller_id", number), days=days)).to_dict()
        return body

    body = with_enforcer(config_file, store_path, job)
    if as_json:
        emit_json(body)
    else:
        click.echo(f"caller ID {body['caller_id']}")
        echo_health(body)


@caller_ids.command("tasks")
@click.option("--state", type=click.Choice(["active", "open", "working", "closed"]),
              default=None, help="Only tasks in this state (active: not closed).")
@click.option("--caller-id", default=None, help="Only this caller ID's tasks.")
@json_option
@store_options
def caller_ids_tasks(state: str | None, caller_id: str | None, as_json: bool,
                     config_file: str | None, store_path: str | None) -> None:
    """Remediation tasks the connect-rate warning opened (号码认证 / 标记申诉), oldest first.

    \b
    Example:
      outguard caller-ids tasks --state active
    """
    key = _key("caller_id", caller_id) if caller_id else None
    rows = with_enforcer(config_file, store_path,
                         lambda e: e.list_health_tasks(state, caller_id=key))
    output([task_dict(t) for t in rows], as_json, TASK_COLUMNS)


@caller_ids.command("task-note")
@step_on_record("task_id", "--text", "The step taken, e.g. who was asked for what.",
                lambda e, task, text: e.note_health_task(task, text=text, actor=actor()),
                lambda t: f"task {t.id} ({t.caller_id}): {t.state}, {len(t.notes)} note(s)")
def caller_ids_task_note() -> None:
    """Record a remediation step on a task (it becomes "working"). Exit code 3 when there
    is no such task, 4 when it is closed.

    \b
    Example:
      outguard caller-ids task-note 3 --text "号码认证 submitted to the marking platforms"
    """


@caller_ids.command("task-close")
@step_on_record("task_id", "--resolution", "What was done and what came of it.",
                lambda e, task, resolution: e.close_health_task(task, resolution=resolution,
                                                                actor=actor()),
                lambda t: f"task {t.id} closed; caller ID {t.caller_id} is no longer throttled")
def caller_ids_task_close() -> None:
    """Close a remediation task: the caller ID's caps are whole again. Exit code 4 when
    it is closed already.

    \b
    Example:
      outguard caller-ids task-close 3 --resolution "标记申诉 accepted by the platforms"
    """
