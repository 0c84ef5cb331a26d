"""Chat prompts: a system instruction, k retrieved examples as user/assistant turns (most similar last),
then the test question with this member's option order."""

from .shuffle import LETTERS

SYSTEM = (
    "Answer the multiple-choice question in the same style as the examples. The question has exactly one "
    "correct option. Think step by step, then end with 'Answer: [X]' where X is one of {letters}, and "
    "write nothing after it."
)
COT_INSTRUCTION = (
    "Summarize what the question is about, analyse each option in turn, then conclude with "
    "'Answer: [X]' where X is the letter of the correct option."
)


def describe(question: str, options: list, context: str | None = None) -> str:
    body = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    head = f"Abstract: {context}\nQuestion: {question}" if context else f"Question: {question}"
    return f"{head}\nOptions:\n{body}"


def medprompt_messages(examples: list, question: str, options: list, context: str | None = None) -> list:
    """examples: records with question, options, reasoning, answer (index), in the order to show them."""
    msgs = [{"role": "system", "content": SYSTEM.format(letters=", ".join(LETTERS[: len(options)]))}]
    for ex in examples:
        msgs.append({"role": "user", "content": describe(ex["question"], ex["options"], ex.get("context"))})
        msgs.append({"role": "assistant", "content": f"{ex['reasoning'].strip()}\nAnswer: [{LETTERS[ex['answer']]}]"})
    msgs.append({"role": "user", "content": describe(question, options, context)})
    return msgs


def cot_messages(question: str, options: list, context: str | None = None) -> list:
    """The database builder's prompt: a step-by-step answer to a training question."""
    return [
        {"role": "system", "content": COT_INSTRUCTION},
        {"role": "user", "content": describe(question, options, context)},
    ]
