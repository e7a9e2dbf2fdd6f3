"""The data-flow diagram of the seeds, for the configuration in force, drawn with Graphviz.

The machine sits in the middle; each destination is a node. Solid edges are required
connections, dashed ones optional or user-initiated; a flow that is off is drawn grey and
labelled "off", so the picture shows what does *not* leave as well as what does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from airlock.errors import UsageError
from airlock.policy.model import Decision, Decisions, FlowId, State

NODE_OF_FLOW = {
    FlowId.MODEL_REQUESTS: "model",
    FlowId.METRICS: "statsig",
    FlowId.ERROR_REPORTING: "sentry",
    FlowId.FEEDBACK_COMMAND: "anthropic_feedback",
    FlowId.SURVEY_RATING: "survey",
    FlowId.TRANSCRIPT_SHARE: "share",
    FlowId.WEBFETCH_PREFLIGHT: "domain_safety",
    FlowId.AUTO_UPDATE: "distribution",
    FlowId.LOCAL_TRANSCRIPTS: "disk",
}

EDGE_LABELS = {
    FlowId.MODEL_REQUESTS: "prompts + outputs (TLS 1.2+)",
    FlowId.METRICS: "operational metrics",
    FlowId.ERROR_REPORTING: "error logs",
    FlowId.FEEDBACK_COMMAND: "/feedback report",
    FlowId.SURVEY_RATING: "survey rating",
    FlowId.TRANSCRIPT_SHARE: "shared transcript",
    FlowId.WEBFETCH_PREFLIGHT: "hostname only",
    FlowId.AUTO_UPDATE: "install / update",
    FlowId.LOCAL_TRANSCRIPTS: "transcripts",
}

ON_COLOUR = "#1f6feb"
OFF_COLOUR = "#b0b0b0"


def build(decisions: Decisions) -> Any:
    """The diagram as a ``graphviz.Digraph``.

    Raises:
        MissingExtraError: The ``graph`` extra (the ``graphviz`` package) is not installed.
    """
    from airlock.extras import require

    require("graph", "airlock flows --graph")
    import graphviz

    graph = graphviz.Digraph(
        "airlock",
        engine="twopi",
        graph_attr={
            "root": "machine",
            "ranksep": "2.4",
            "overlap": "false",
            "splines": "true",
            "fontname": "Helvetica",
            "label": f"What leaves this machine — provider: {decisions.provider.label}"
            + ("\n(managed settings invalid: failing closed)" if decisions.fail_closed else ""),
            "labelloc": "t",
            "fontsize": "16",
        },
    )
    graph.attr("node", fontname="Helvetica", fontsize="11", shape="box", style="rounded,filled")
    graph.attr("edge", fontname="Helvetica", fontsize="9")
    graph.node("machine", "Your machine\n(the agent)", fillcolor="#ffe9a8", shape="box3d")
    for decision in decisions:
        _add_flow(graph, decision)
    return graph


def _add_flow(graph: Any, decision: Decision) -> None:
    node = NODE_OF_FLOW[decision.id]
    off = decision.state is State.OFF
    colour = OFF_COLOUR if off else ON_COLOUR
    graph.node(
        node,
        f"{decision.destination}\n[{decision.retention.summary}]",
        fillcolor="#f2f2f2" if off else "#e8f0fe",
        color=colour,
        fontcolor="#888888" if off else "#000000",
    )
    label = f"{EDGE_LABELS[decision.id]}\n{decision.id}: {decision.state}"
    graph.edge(
        "machine",
        node,
        label=label,
        style="solid" if decision.required else "dashed",
        color=colour,
        fontcolor=colour if off else "#000000",
    )


def write(decisions: Decisions, path: Path) -> Path:
    """Draw the diagram into ``path``: ``.dot`` writes the Graphviz source, else the format of
    the suffix (``.svg``, ``.png``, ``.pdf``) rendered by Graphviz's ``dot``."""
    graph = build(decisions)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("dot", "gv"):
        path.write_text(graph.source, encoding="utf-8")
        return path
    if suffix not in ("svg", "png", "pdf"):
        raise UsageError(f"--graph {path}: unknown format {suffix!r}; use .svg, .png, .pdf or .dot")
    if shutil.which("dot") is None:
        raise UsageError(
            "--graph needs Graphviz's 'dot' program, which is not installed "
            "(apt-get install graphviz, brew install graphviz), or write .dot instead"
        )
    path.write_bytes(graph.pipe(format=suffix))
    return path
