"""Generated-and-judged evaluations: S-Eval safety (Tables 13-14, Llama Guard 3 as the judge), accuracy by
medical field (Table 10) and OpenMedQA (open-ended MedQA judged by an LLM). Generation runs in the stage
environments through medprompt's backends (evals.run); parsing and scoring are plain Python."""
