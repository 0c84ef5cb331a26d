"""The provenance tags of recipe values, as written in recipes/<recipe>/*.yaml: `# [P] ...` published, `# [D] ...`
derived, `# [C] ...` a recipe choice, in the comment after each value (the model card and the report show them)."""

import re

import yaml

TAG = re.compile(r"\[([PDC])\]\s*(.*)")


def comments(text: str) -> dict:
    """{dotted key (values.flatten's numbering): (tag, note)} of a recipe file: the comment after each value on its
    line, with its continuation lines (indented 20+), its [P]/[D]/[C] tag split off; a list item without a tag of its
    own takes its list's."""
    lines, ends, keys = text.splitlines(), {}, {}

    def end(node):
        ends[node.end_mark.line] = max(ends.get(node.end_mark.line, 0), node.end_mark.column)

    def walk(node, prefix):
        if isinstance(node, yaml.ScalarNode) or node.flow_style:
            end(node)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                end(k)
                keys[prefix + str(k.value)] = (k.start_mark.line, False)
                walk(v, f"{prefix}{k.value}.")
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                keys[f"{prefix}{i}"] = (v.start_mark.line, True)
                walk(v, f"{prefix}{i}.")

    def note(n):
        rest = lines[n][ends.get(n, 0) :].strip().removeprefix(":").strip()  # after a value, or a key's colon
        if not rest.startswith("#"):
            return None, ""
        more = []
        while n + 1 < len(lines) and re.match(r"\s{20,}#", lines[n + 1]):
            n += 1
            more.append(lines[n].strip().lstrip("#").strip())
        said = " ".join([rest.lstrip("#").strip(), *more]).strip()
        m = TAG.fullmatch(said)
        return (m.group(1), m.group(2)) if m else (None, said)

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, "")
    out = {}
    for key, (n, item) in keys.items():
        tag, said = note(n)
        up = key
        while tag is None and item and (up := up.rpartition(".")[0]) in keys:
            tag, item = note(keys[up][0])[0], keys[up][1]
        out[key] = (tag, said)
    return out
