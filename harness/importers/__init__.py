"""Importers: published raw results into typed records. One module per kind; each has
`import_file(path: Path, model: str, args: argparse.Namespace) -> list[ResultRecord]`."""

KINDS = {
    "lm-eval": "harness.importers.lm_eval",
    "alpaca-eval": "harness.importers.alpaca_eval",
    "arena-hard": "harness.importers.arena_hard",
    "mt-bench": "harness.importers.mt_bench",
}
