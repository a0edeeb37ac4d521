"""What a lab reads of a run in the Prefect UI: artifacts built from the flows' typed results."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from shearlab.datasets.records import CalibrationFit

if TYPE_CHECKING:
    from shearlab.orchestrator.flows.acquisition import CampaignSummary


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) from a plan's or batch's name."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def campaign_markdown(summary: CampaignSummary) -> str:
    rate = "-" if summary.qc_pass_rate is None else f"{summary.qc_pass_rate:.1%}"
    lines = [f"## Campaign {summary.plan} on rig {summary.rig}", "",
             f"- sequences written: {summary.written}",
             f"- recorded as failed: {summary.failed}",
             f"- already present (resumed): {summary.skipped}",
             f"- QC pass rate: {rate}",
             f"- re-acquisitions: {summary.reacquired}", ""]
    if summary.failures_by_check:
        lines += ["| failed check | sequences |", "|---|---|"]
        lines += [f"| {check} | {count} |" for check, count in summary.failures_by_check.items()]
        lines.append("")
    lines += ["| batch | calibration id |", "|---|---|"]
    lines += [f"| {batch} | `{cal}` |" for batch, cal in summary.calibration_ids.items()]
    lines += ["", "Sessions:"]
    lines += [f"- `{s}`" for s in summary.sessions]
    return "\n".join(lines)


def publish_campaign(summary: CampaignSummary) -> None:
    """The campaign summary (markdown) and one row per probe position (table)."""
    key = artifact_key("campaign", summary.plan)
    create_markdown_artifact(key=key, markdown=campaign_markdown(summary), description=f"SWEI campaign {summary.plan}")
    create_table_artifact(key=f"{key}-positions", description=f"positions of campaign {summary.plan}",
                          table=[{**p.model_dump(exclude={"failures"}), "failures": ", ".join(p.failures)} for p in summary.positions])


def calibration_markdown(records: list[CalibrationFit], sessions: list[str]) -> str:
    lines = ["| batch | concentration % | E kPa | 95 % CI kPa | points | R2 | calibration id |", "|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r.batch_id} | {r.concentration_pct} | {r.e_kpa:.2f} | {r.ci95_kpa[0]:.2f}-{r.ci95_kpa[1]:.2f} "
                     f"| {r.n_points} | {r.r2:.4f} | `{r.calibration_id}` |")
    lines += ["", "Sessions:"]
    lines += [f"- `{s}`" for s in sessions]
    return "\n".join(lines)


def publish_calibration(plan_name: str, records: list[CalibrationFit], sessions: list[str]) -> None:
    create_markdown_artifact(key=artifact_key("calibration", plan_name), markdown=calibration_markdown(records, sessions),
                             description=f"indentation calibration {plan_name}")
