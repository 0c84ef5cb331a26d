"""The rows of a registry entry (data_prep/sources.yaml) from the hub, or from a folder laid out like it.

A split's files are resolved as `datasets` resolves them (the repo's README configs, else its file names),
which lists files and reads no data. From a folder (--hub-dir DIR: DIR/<owner>/<repo>, as
`python -m data_prep.fixtures --hub-dir` writes), .json and .jsonl files are read by io.read_jsonl: streamed
whatever their size (`datasets` loads a .json file that starts with `[` whole, even streaming), named by file
and line. Other files, and the hub itself, are streamed by `datasets` (line: the row number). From the hub, an
entry with `parquet_export: <revision>` is read from the hub's parquet export of the repo, that revision
(refs/convert/parquet) holding `<config>/<split>/*.parquet` (huggingface.co/docs/dataset-viewer/parquet), so
the authors' large JSON arrays are not loaded whole (../shared/reference/hub_sources.md, "Update 2026-12-02").
A mirror holds the main branch only, so there the key is not used. `where` says which revision and files a
read takes, for the report.
"""

from pathlib import Path

from .io import read_jsonl

EXPORT_FILES = "{config}/{split}/*.parquet"  # the parquet export's layout; a repo's one config is "default"
JSON = (".json", ".jsonl")


def load_args(entry, hub_dir=None) -> tuple:
    """(path, config, keyword arguments) that `datasets.load_dataset_builder` opens the entry with."""
    if entry.get("parquet_export") and not hub_dir:
        files = {entry["split"]: EXPORT_FILES.format(config=entry.get("config") or "default", split=entry["split"])}
        return entry["hub"], None, {"revision": entry["parquet_export"], "data_files": files}
    kwargs = {k: entry[k] for k in ("data_files", "revision") if entry.get(k)}
    if not hub_dir:
        return entry["hub"], entry.get("config"), kwargs
    path = Path(hub_dir) / entry["hub"]
    if not path.is_dir():
        raise FileNotFoundError(f"dataset {entry['hub']} not found (no folder {path})")
    return str(path), entry.get("config"), kwargs


def _builder(path, config, kwargs):
    import datasets

    return datasets.load_dataset_builder(path, config, **kwargs)


def _files(builder, entry) -> list:
    found = builder.config.data_files or {}
    if entry["split"] not in found:
        raise ValueError(
            f"dataset {entry['hub']} has no split {entry['split']!r} (splits: {', '.join(map(str, found))})"
        )
    return list(found[entry["split"]])


def where(entry, hub_dir=None) -> dict:
    """What a read of the entry takes: dataset, config, split, revision asked for, and the files resolved (from
    the hub: hf:// paths holding the commit of that revision). Lists files; reads no data."""
    path, config, kwargs = load_args(entry, hub_dir)
    return {
        "dataset": path,
        "config": config,
        "split": entry["split"],
        "revision": kwargs.get("revision"),
        "data_files": _files(_builder(path, config, kwargs), entry),
    }


def rows(entry, hub_dir=None):
    """An iterator of (file, line, row, error) over the entry's split (its `filter` is the caller's). Opening
    errors raise here (a missing folder: FileNotFoundError naming the dataset and folder); a JSON file's broken
    row is an error with its line, as io.read_jsonl reports it; a file of another format that breaks half-way
    raises while iterating."""
    builder = _builder(*load_args(entry, hub_dir))
    files = _files(builder, entry)
    if hub_dir and all(f.endswith(JSON) for f in files):
        return ((f, n, row, err) for f in files for n, row, err in read_jsonl(f))
    stream = builder.as_streaming_dataset(split=entry["split"])
    return ((entry["hub"], n, row, None) for n, row in enumerate(stream, 1))
