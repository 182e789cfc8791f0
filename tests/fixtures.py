"""Small files in the exact official formats, built from real rows.

The RTE, STS-B and SNLI rows below are copied verbatim from the official files (GLUE RTE/STS-B, and
GLUE-SNLI lines from ``derived/SNLI/dev_sample1k.glue.tsv``), so the malformed-input tests need no
shared data. The MNLI/QQP/SNLI/SciTail builders take their rows from ``shared/data/derived``.
"""

from __future__ import annotations

import json
from pathlib import Path

# --- GLUE RTE: index, sentence1, sentence2, label (test has no label) -----------------------------
RTE_HEADER = ["index", "sentence1", "sentence2", "label"]
RTE_TRAIN = [
    [
        "0",
        "No Weapons of Mass Destruction Found in Iraq Yet.",
        "Weapons of Mass Destruction Found in Iraq.",
        "not_entailment",
    ],
    [
        "5",
        "Britain said, Friday, that it has barred cleric, Omar Bakri, from returning to the country from Lebanon, where he was released by police after being detained for 24 hours.",
        "Bakri was briefly detained, but was released.",
        "entailment",
    ],
    [
        "12",
        'Valero Energy Corp., on Monday, said it found "extensive" additional damage at its 250,000-barrel-per-day Port Arthur refinery.',
        "Valero Energy Corp. produces 250,000 barrels per day.",
        "entailment",
    ],
    ["13", "Oil prices fall back as Yukos oil threat lifted", "Oil prices rise.", "not_entailment"],
]
RTE_DEV = [
    [
        "8",
        "Steve Jobs was attacked by Sculley and other Apple executives for not delivering enough hot new products and resigned from the company a few weeks later.",
        "Steve Jobs worked for Apple.",
        "entailment",
    ],
    [
        "11",
        "In a bowl, whisk together the eggs and sugar until completely blended and frothy.",
        "In a bowl, whisk together the egg, sugar and vanilla until light in color.",
        "not_entailment",
    ],
    [
        "12",
        "In Nigeria, by far the most populous country in sub-Saharan Africa, over 2.7 million people are infected with HIV.",
        "2.7 percent of the people infected with HIV live in Africa.",
        "not_entailment",
    ],
]
RTE_TEST = [
    [
        "0",
        "Mangla was summoned after Madhumita's sister Nidhi Shukla, who was the first witness in the case.",
        "Shukla is related to Mangla.",
    ],
    [
        "5",
        "His wife Strida won a seat in parliament after forging an alliance with the main anti-Syrian coalition in the recent election.",
        "Strida elected to parliament.",
    ],
    [
        "7",
        "The upper house of the Russian parliament has approved a controversial bill to tighten state control over non-governmental organisations (NGOs).",
        "Russian parliament closes NGOs.",
    ],
]

# --- GLUE STS-B: 10 columns, the score last (test: 9 columns) -------------------------------------
STSB_HEADER = [
    "index",
    "genre",
    "filename",
    "year",
    "old_index",
    "source1",
    "source2",
    "sentence1",
    "sentence2",
    "score",
]
STSB_TRAIN = [
    [
        "0",
        "main-captions",
        "MSRvid",
        "2012test",
        "0001",
        "none",
        "none",
        "A plane is taking off.",
        "An air plane is taking off.",
        "5.000",
    ],
    [
        "1",
        "main-captions",
        "MSRvid",
        "2012test",
        "0004",
        "none",
        "none",
        "A man is playing a large flute.",
        "A man is playing a flute.",
        "3.800",
    ],
    [
        "3",
        "main-captions",
        "MSRvid",
        "2012test",
        "0006",
        "none",
        "none",
        "Three men are playing chess.",
        "Two men are playing chess.",
        "2.600",
    ],
]
STSB_DEV = [
    [
        "0",
        "main-captions",
        "MSRvid",
        "2012test",
        "0000",
        "none",
        "none",
        "A man with a hard hat is dancing.",
        "A man wearing a hard hat is dancing.",
        "5.000",
    ],
    [
        "1",
        "main-captions",
        "MSRvid",
        "2012test",
        "0002",
        "none",
        "none",
        "A young child is riding a horse.",
        "A child is riding a horse.",
        "4.750",
    ],
]
STSB_TEST = [
    [
        "0",
        "main-captions",
        "MSRvid",
        "2012test",
        "0024",
        "none",
        "none",
        "A girl is styling her hair.",
        "A girl is brushing her hair.",
    ],
    [
        "1",
        "main-captions",
        "MSRvid",
        "2012test",
        "0033",
        "none",
        "none",
        "A group of men play soccer on the beach.",
        "A group of boys are playing soccer on the beach.",
    ],
]

# --- SNLI: GLUE-SNLI lines (index captionID pairID 4 parses s1 s2 label1..label5 gold_label) -------
SNLI_GLUE_ROWS = [
    ["439", "404491917.jpg#1", "404491917.jpg#1r1c", "( ( a man ) ( is ( ( swimming inside ) ( of ( a pool ) ) ) ) )", "( there ( ( is ( ( a person ) drowning ) ) . ) )", "(ROOT (S (NP (DT a) (NN man)) (VP (VBZ is) (VP (VBG swimming) (ADVP (RB inside)) (PP (IN of) (NP (DT a) (NN pool)))))))", "(ROOT (S (NP (EX there)) (VP (VBZ is) (NP (NP (DT a) (NN person)) (VP (VBG drowning)))) (. .)))", "a man is swimming inside of a pool", "there is a person drowning.", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction"],
    ["2420", "2021602343.jpg#2", "2021602343.jpg#2r1c", "( ( ( A boy ) ( with ( a basketballs ) ) ) ( ( glowers ( at ( the camera ) ) ) . ) )", "( ( The boy ) ( is smiling ) )", "(ROOT (S (NP (NP (DT A) (NN boy)) (PP (IN with) (NP (DT a) (NNS basketballs)))) (VP (VBZ glowers) (PP (IN at) (NP (DT the) (NN camera)))) (. .)))", "(ROOT (S (NP (DT The) (NN boy)) (VP (VBZ is) (VP (VBG smiling)))))", "A boy with a basketballs glowers at the camera.", "The boy is smiling", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction"],
    ["5431", "502783522.jpg#1", "502783522.jpg#1r1n", "( ( A ( black dog ) ) ( ( is ( running ( through ( a ( wooded area ) ) ) ) ) . ) )", "( ( ( A ( black dog ) ) ( with ( a ( red collar ) ) ) ) . )", "(ROOT (S (NP (DT A) (JJ black) (NN dog)) (VP (VBZ is) (VP (VBG running) (PP (IN through) (NP (DT a) (JJ wooded) (NN area))))) (. .)))", "(ROOT (NP (NP (DT A) (JJ black) (NN dog)) (PP (IN with) (NP (DT a) (JJ red) (NN collar))) (. .)))", "A black dog is running through a wooded area.", "A black dog with a red collar.", "neutral", "neutral", "neutral", "neutral", "neutral", "neutral"],
    ["2835", "467960888.jpg#4", "467960888.jpg#4r1c", "( ( A dog ) ( ( runs ( along ( the ( ocean surf ) ) ) ) . ) )", "( ( A cat ) ( ( is ( running ( in ( the waves ) ) ) ) . ) )", "(ROOT (S (NP (DT A) (NN dog)) (VP (VBZ runs) (PP (IN along) (NP (DT the) (NN ocean) (NN surf)))) (. .)))", "(ROOT (S (NP (DT A) (NN cat)) (VP (VBZ is) (VP (VBG running) (PP (IN in) (NP (DT the) (NNS waves))))) (. .)))", "A dog runs along the ocean surf.", "A cat is running in the waves.", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction", "contradiction"],
]  # fmt: skip

# --- GLUE CoLA train.tsv: headerless (source, label, original label, sentence) ---------------------
COLA_TRAIN = [
    ["gj04", "1", "", "Our friends won't buy this analysis, let alone the next one we propose."],
    ["gj04", "1", "", "One more pseudo generalization and I'm giving up."],
    ["gj04", "1", "", "One more pseudo generalization or I'm giving up."],
]

# --- GLUE QNLI dev.tsv rows (question, sentence, label): v2 binary pairs, not candidate lists. The
# first question has one candidate (the positive), the second one candidate and no positive, the
# third two candidates with one positive (dev rows 0, 1, 2 and 3517). -----------------------------
QNLI_PAIRS = [
    ["What came into force after the new constitution was herald?", "As of that day, the new constitution heralding the Second Republic came into force.", "entailment"],
    ["What is the first major city in the stream of the Rhine?", "The most important tributaries in this area are the Ill below of Strasbourg, the Neckar in Mannheim and the Main across from Mainz.", "not_entailment"],
    ["What is the minimum required if you want to teach in Canada?", "In most provinces a second Bachelor's Degree such as a Bachelor of Education is required to become a qualified teacher.", "not_entailment"],
    ["What is the minimum required if you want to teach in Canada?", "Teaching in Canada requires a post-secondary degree Bachelor's Degree.", "entailment"],
]  # fmt: skip

MNLI_TRAIN_COLUMNS = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]  # fmt: skip
MNLI_DEV_COLUMNS = MNLI_TRAIN_COLUMNS[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
MNLI_TEST_COLUMNS = MNLI_TRAIN_COLUMNS[:10]


def tsv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    """GLUE style: tab-separated, no quoting, LF line endings, final newline."""
    lines = ([header] if header else []) + rows
    return "".join("\t".join(r) + "\n" for r in lines)


def write_tsv(path: Path, header: list[str] | None, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tsv_text(header, rows), encoding="utf-8")
    return path


def make_rte(root: Path) -> Path:
    """``<root>/RTE/{train,dev,test}.tsv`` in the GLUE layout; returns ``root`` (a GLUE_DIR)."""
    write_tsv(root / "RTE" / "train.tsv", RTE_HEADER, RTE_TRAIN)
    write_tsv(root / "RTE" / "dev.tsv", RTE_HEADER, RTE_DEV)
    write_tsv(root / "RTE" / "test.tsv", RTE_HEADER[:3], RTE_TEST)
    return root


def make_stsb(root: Path) -> Path:
    write_tsv(root / "STS-B" / "train.tsv", STSB_HEADER, STSB_TRAIN)
    write_tsv(root / "STS-B" / "dev.tsv", STSB_HEADER, STSB_DEV)
    write_tsv(root / "STS-B" / "test.tsv", STSB_HEADER[:9], STSB_TEST)
    return root


def snli_record(fields: list[str]) -> dict:
    """One official ``snli_1.0_*.jsonl`` object from a GLUE-SNLI line (15 fields, or 11 for train)."""
    labels = [x for x in fields[9:-1] if x]
    return {
        "annotator_labels": labels,
        "captionID": fields[1],
        "gold_label": fields[-1],
        "pairID": fields[2],
        "sentence1": fields[7],
        "sentence1_binary_parse": fields[3],
        "sentence1_parse": fields[5],
        "sentence2": fields[8],
        "sentence2_binary_parse": fields[4],
        "sentence2_parse": fields[6],
    }


def jsonl_text(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def make_snli(root: Path, records: list[dict] | None = None) -> Path:
    """``<root>/SNLI/snli_1.0_{train,dev,test}.jsonl``; every split gets the same real records."""
    records = records if records is not None else [snli_record(r) for r in SNLI_GLUE_ROWS]
    for split in ("train", "dev", "test"):
        path = root / "SNLI" / f"snli_1.0_{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(jsonl_text(records), encoding="utf-8")
    return root


def read_tsv(path: Path, limit: int | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a tab-separated file with no quoting (the derived files' format)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [ln.split("\t") for ln in lines[1:]]
    return lines[0].split("\t"), rows[:limit] if limit else rows
