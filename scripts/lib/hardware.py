"""Hardware and batch arithmetic of a recipe: its `hardware` entries (nodes x GPUs per job, one node for the
single-process stages) and the training stages' batch, micro x accumulation x world size = the published total."""

from dataclasses import dataclass, field

from .recipe import Recipe
from .yamlfiles import Problem, suggest

# the stages that run as jobs of their own (recipe.yaml `hardware` has one entry each)
HARDWARE_ENTRIES = ("data", "sft", "merge", "dpo", "medprompt", "eval")


ONE_NODE = ("data", "merge", "medprompt", "eval")  # one process on one node: data_prep, mergekit, vLLM or HF


def declared_world(r: Recipe, stage: str) -> int:
    """Ranks of a stage on the recipe's (or profile's) declared hardware; a CPU-only stage has one."""
    return int(r.files["recipe"]["hardware"][stage]["gpus"]) or 1


def check_hardware(r: Recipe):
    """recipe.yaml `hardware`: one {gpus, nodes} entry per stage job, GPUs spread evenly over the nodes."""
    hw, out = r.files["recipe"].get("hardware") or {}, []
    for entry in sorted(set(hw) | set(HARDWARE_ENTRIES)):
        h = r.hardware(entry) if isinstance(hw.get(entry), dict) else hw.get(entry)  # with a LAYOUT= override
        if entry not in HARDWARE_ENTRIES:
            out.append(r.problem("recipe", entry, "unknown hardware entry" + suggest(entry, HARDWARE_ENTRIES)))
        elif not isinstance(h, dict) or not isinstance(h.get("gpus"), int) or not isinstance(h.get("nodes"), int):
            out.append(r.problem("recipe", "hardware", f"hardware.{entry} needs integer gpus and nodes"))
        elif h["nodes"] < 1 or h["gpus"] % h["nodes"]:
            out.append(r.problem("recipe", entry, f"{h['gpus']} GPUs cannot be spread evenly over {h['nodes']} nodes"))
        elif entry in ONE_NODE and h["nodes"] != 1:
            out.append(r.problem("recipe", entry, f"{entry} runs as one process (vLLM tensor parallel): one node only"))
    return out


@dataclass(frozen=True)
class Batch:
    """The batch arithmetic of a training stage: micro x accumulation x world size = total (problems: why not)."""

    world: int
    micro: int
    accum: int | None  # None: no whole number reaches the total on this world size
    total: int
    problems: list = field(default_factory=list)

    def numbers(self) -> dict:
        """The manifest's keys that decide the optimisation."""
        return {
            "world_size": self.world,
            "micro_batch": self.micro,
            "grad_accum": self.accum,
            "total_batch": self.total,
        }

    def __str__(self):
        return f"{self.micro} x {self.accum} x {self.world} = {self.total}"


def sft_batch(r: Recipe) -> Batch:
    """With an explicit world size, grad accum is recomputed; on the declared layout, the file's must fit it."""
    sft, total = r.files["sft"], int(r.files["recipe"]["sft_total_batch"])
    micro, world = int(sft.get("micro_batch_size", 1)), r.world("sft")
    if world == declared_world(r, "sft"):
        ga = int(sft.get("gradient_accumulation_steps", 1))
        if micro * ga * world != total:
            why = (f"micro batch {micro} x grad accum {ga} x {world} GPUs = {micro * ga * world}, "
                   f"but the total batch (recipe.yaml sft_total_batch) is {total}")  # fmt: skip
            return Batch(world, micro, ga, total, [r.problem("sft", "gradient_accumulation_steps", why)])
        return Batch(world, micro, ga, total)
    if total % (micro * world):
        return Batch(world, micro, None, total, [unreachable(r, "sft", "micro_batch_size", total, micro, world)])
    return Batch(world, micro, total // (micro * world), total)


def dpo_batch(r: Recipe) -> Batch:
    args = r.files["dpo"].get("args") or {}
    total, micro, world = (
        int(args.get("train.batch_size", 0)),
        int(args.get("train.micro_batch_size", 1)),
        r.world("dpo"),
    )
    if total <= 0 or total % (micro * world):
        return Batch(world, micro, None, total, [unreachable(r, "dpo", "train.batch_size", total, micro, world)])
    return Batch(world, micro, total // (micro * world), total)


BATCH = {"sft": sft_batch, "dpo": dpo_batch}  # hardware entry -> its batch arithmetic (the training stages)


def unreachable(r: Recipe, stem: str, key: str, total: int, micro: int, world: int) -> Problem:
    """A total batch that micro batch x world size does not divide, with the world sizes that would."""
    return r.problem(
        stem,
        key,
        f"a total batch of {total} cannot be reached on {world} GPUs with micro batch {micro} "
        f"({total} is not a multiple of {micro * world}); world sizes that work: {divisors(max(total, 1) // micro)}",
    )


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]
