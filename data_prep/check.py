"""Preflight of `make data` and `make eval`: every registry source and every eval dataset opened before any compute.

For each source of the chosen set (data_prep/sources.yaml): the hub id, config and split open (streaming,
first rows only); a source whose layout is unverified is read in the known format that fits its rows (the
layout column says "declared X, found Y" when that is not the declared one); the columns that format reads
exist; it fits the sampled rows. For each eval task: its dataset repo holds no loading script at the revision
the task reads (data_prep/script_only.yaml, and the repo's own file list where the hub or a mirror is reachable). Prints one table per part and exits 1
on any mismatch, naming the source or task and why.

  python -m data_prep.check [--sources authors|upstream] [--hub-dir DIR] [--eval tasks.json] [--json out.json]
  (--hub-dir: a folder laid out like the hub, DIR/<owner>/<repo>, as data_prep/fixtures.py --hub-dir writes)
"""

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from scripts.core import table

from . import hub
from . import normalize as nz

SCRIPT_ONLY = yaml.safe_load(Path(__file__).with_name("script_only.yaml").read_text())


def known_script(repo: str, revision: str | None) -> str | None:
    entry = SCRIPT_ONLY.get(repo)
    if entry and (revision or "main") in entry["revisions"]:
        return f"a loading script at {revision or 'main'} ({entry['note']})"
    return None


def repo_scripts(repo: str, revision: str | None, hub_dir) -> list | None:
    """Loading scripts at the repo's root (<name>.py), from the mirror or the hub; None if it cannot be listed."""
    if hub_dir:
        root = Path(hub_dir) / repo
        return sorted(p.name for p in root.glob("*.py")) if root.is_dir() else None
    from huggingface_hub import HfApi

    files = HfApi().list_repo_files(repo, repo_type="dataset", revision=revision)
    return sorted(f for f in files if f.endswith(".py") and "/" not in f)


def sample(entry, hub_dir, rows: int, scan: int):
    """(columns seen, sampled rows, the first unreadable row's file:line and reason or None): the first rows of
    the split that pass the entry's filter."""
    seen, got, flt = [], [], entry.get("filter")
    for n, (path, line, row, err) in enumerate(hub.rows(entry, hub_dir), 1):
        if err:
            return seen, got, f"{path}:{line}: {err}"
        if flt and not str(row.get(flt["column"], "")).startswith(flt["prefix"]):
            if n >= scan:
                break
            continue
        seen += [c for c in row if c not in seen]
        got.append(row)
        if len(got) >= rows or n >= scan:
            break
    return seen, got, None


def check_source(entry, hub_dir, rows: int, scan: int) -> dict:
    split = f"{entry.get('config') or '-'}/{entry['split']}"
    out = {
        "source": entry["name"],
        "hub": entry.get("hub") or "-",
        "config/split": split,
        "columns": "-",
        "layout": entry["format"],
        "fits": "-",
        "rows": 0,
        "status": "ok",
        "ok": True,
    }
    if entry.get("hub") is None:
        return {**out, "status": f"local only: {entry['why'].split(';')[0]}"}
    bad = known_script(entry["hub"], entry.get("revision"))
    if bad:
        return {**out, "status": f"FAIL: {bad}", "ok": False}
    try:
        seen, got, unreadable = sample(entry, hub_dir, rows, scan)
    except Exception as e:  # noqa: BLE001 - the hub's and datasets' own errors, reported per source
        return {**out, "status": f"FAIL: {type(e).__name__}: {' '.join(str(e).split())[:160]}", "ok": False}
    out.update(columns=", ".join(seen), rows=len(got))
    if unreadable:
        return {**out, "status": f"FAIL: unreadable row at {unreadable}", "ok": False}
    if not got:
        what = (
            f" whose {entry['filter']['column']} starts with {entry['filter']['prefix']!r}"
            if entry.get("filter")
            else ""
        )
        return {**out, "status": f"FAIL: no rows{what} in the first {scan}", "ok": False}
    fmt = entry["format"]
    if entry.get("layout") == "unverified":
        fmt, n = nz.detect(got, entry)
        if not n:
            return {
                **out,
                "status": f"FAIL: no known layout fits (declared {entry['format']}; columns {', '.join(seen)})",
                "ok": False,
            }
    out["layout"] = fmt if fmt == entry["format"] else f"declared {entry['format']}, found {fmt}"
    mapped = nz.columns(entry, fmt, seen)
    known = {*mapped.values(), *nz.OPTIONAL.get(fmt, ()), *entry.get("unused", ())}
    missing = [c for c in mapped.values() if c not in seen]
    unmapped = [c for c in seen if c not in known]
    if missing or unmapped:
        what = [f"missing column {', '.join(map(repr, missing))}"] if missing else []
        what += (
            [
                f"unmapped: {', '.join(map(repr, unmapped))}"
                if missing
                else f"extra column {', '.join(map(repr, unmapped))} (map it, or list it as `unused`)"
            ]
            if unmapped
            else []
        )
        return {**out, "status": "FAIL: " + (f"{what[0]} ({what[1]})" if len(what) == 2 else what[0]), "ok": False}
    fields = nz.fields_of(entry, fmt)
    errors = []
    for row in got:
        try:
            nz.convert(row, fmt, fields)
        except nz.Malformed as e:
            errors.append(str(e))
    out["fits"] = f"{len(got) - len(errors)}/{len(got)}"
    if errors:
        return {**out, "status": f"FAIL: {fmt} does not fit: {errors[0]}", "ok": False}
    return out


def check_eval(task: str, ds: dict, hub_dir) -> dict:
    out = {
        "task": task,
        "dataset": ds["path"],
        "config": ds.get("name") or "-",
        "revision": ds.get("revision") or "main",
        "status": "ok",
        "ok": True,
    }
    if ds["path"] in ("json", "csv", "parquet", None):
        return {**out, "status": "local files"}
    bad = known_script(ds["path"], ds.get("revision"))
    if bad:
        return {**out, "status": f"FAIL: {bad}", "ok": False}
    if ds.get("revision") and hub_dir:  # a mirror holds one revision: the main branch
        return {**out, "status": "ok (revision not mirrored)"}
    try:
        scripts = repo_scripts(ds["path"], ds.get("revision"), hub_dir)
    except Exception as e:  # noqa: BLE001
        return {**out, "status": f"FAIL: {type(e).__name__}: {' '.join(str(e).split())[:160]}", "ok": False}
    if scripts is None:
        return {**out, "status": "not in the mirror (checked against the known list only)"}
    if scripts:
        return {**out, "status": f"FAIL: loading script {', '.join(scripts)}", "ok": False}
    return out


def clip(s, n=48):
    return s if len(s) <= n else s[: n - 3] + "..."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", default="authors", choices=nz.VARIANTS, help="source set (default authors)")
    ap.add_argument("--hub-dir", help="a folder laid out like the hub (default: the hub)")
    ap.add_argument("--rows", type=int, default=5, help="rows sampled per source (default 5)")
    ap.add_argument("--scan", type=int, default=5000, help="rows read at most to find a filtered subset")
    ap.add_argument("--eval", help="JSON {task: {path, name, revision}} of the eval tasks to check")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    src_rows, t0 = [], time.perf_counter()
    for entry in nz.registry(variant=a.sources):
        t = time.perf_counter()
        r = check_source(entry, a.hub_dir, a.rows, a.scan)
        r["s"] = round(time.perf_counter() - t, 1)
        src_rows.append(r)
        print(f"[data-check] {r['source']}: {r['status']} ({r['s']} s)", file=sys.stderr, flush=True)
    keys = ["source", "hub", "config/split", "columns", "layout", "fits", "rows", "status"]
    headers = ["source", "hub id", "config/split", "columns seen", "layout", "format fits", "rows sampled", "status"]
    print(f"sources ({a.sources} set{', mirror ' + a.hub_dir if a.hub_dir else ', the hub'}):")
    print(table(headers, [[clip(str(r[k]), 60 if k == "status" else 48) for k in keys] for r in src_rows]))
    eval_rows = []
    if a.eval:
        eval_rows = [check_eval(t, ds, a.hub_dir) for t, ds in json.loads(Path(a.eval).read_text()).items()]
        ekeys = ["task", "dataset", "config", "revision", "status"]
        print("\neval datasets:")
        print(table(ekeys, [[clip(str(r[k]), 60) for k in ekeys] for r in eval_rows]))
    bad = [(r["source"], r["status"]) for r in src_rows if not r["ok"]] + [
        (r["task"], r["status"]) for r in eval_rows if not r["ok"]
    ]
    failed = [name for name, _ in bad]
    if bad:
        print("\nwhy:\n" + "\n".join(f"  {name}: {status}" for name, status in bad))
    print(
        f"\n{len(src_rows)} sources, {len(eval_rows)} eval tasks in {time.perf_counter() - t0:.1f} s: "
        + (f"{len(failed)} FAILED: {', '.join(failed)}" if failed else "all ok")
    )
    if a.json:
        Path(a.json).write_text(json.dumps({"sources": src_rows, "eval": eval_rows, "failed": failed}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
