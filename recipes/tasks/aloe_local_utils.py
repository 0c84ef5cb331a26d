# The upstream MedQA prompt, re-exported so that the local task scores exactly like medqa_4options.
from lm_eval.tasks.medqa.preprocess_medqa import doc_to_target, doc_to_text  # noqa: F401
