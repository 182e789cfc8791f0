"""The paper's reported numbers (arXiv 1901.11504 v2), printed beside ours."""

from __future__ import annotations

# GLUE dev, Table 3: column -> (BERT-large, MT-DNN). The paper prints MRPC as F1/accuracy.
GLUE_DEV = {
    "cola/mcc": (61.8, 63.5),
    "sst2/accuracy": (93.5, 94.3),
    "mrpc/accuracy": (85.8, 87.5),
    "mrpc/f1": (89.5, 91.0),
    "stsb/pearson": (89.6, 90.7),
    "stsb/spearman": (89.3, 90.6),
    "qqp/accuracy": (91.1, 91.9),
    "qqp/f1": (88.0, 89.2),
    "mnli-m/accuracy": (86.3, 87.1),
    "mnli-mm/accuracy": (86.2, 86.7),
    "qnli/accuracy": (92.4, 92.9),
    "rte/accuracy": (71.1, 83.4),
}

# GLUE test, Table 2 (BERT-large's row as the paper reprints it from BERT): column -> (BERT-large,
# MT-DNN). The published GLUE scores, 80.5 and 82.7, follow from these rows by GLUE's rule
# (mtdnn.report.glue.glue_score): tests check that they do.
GLUE_TEST = {
    "cola/mcc": (60.5, 62.5),
    "sst2/accuracy": (94.9, 95.6),
    "mrpc/f1": (89.3, 91.1),
    "mrpc/accuracy": (85.4, 88.2),
    "stsb/pearson": (87.6, 89.5),
    "stsb/spearman": (86.5, 88.8),
    "qqp/f1": (72.1, 72.7),
    "qqp/accuracy": (89.3, 89.6),
    "mnli-m/accuracy": (86.7, 86.7),
    "mnli-mm/accuracy": (85.9, 86.0),
    "qnli/accuracy": (92.7, 93.1),
    "rte/accuracy": (70.1, 81.4),
    "wnli/accuracy": (65.1, 65.1),
}
GLUE_TEST_SCORE = (80.5, 82.7)

# Domain adaptation, Table 4 (dev accuracy): dataset -> {fraction: (BERT-base, MT-DNN-base)}
ADAPT = {
    "snli": {0.001: (52.5, 82.1), 0.01: (78.1, 85.2), 0.1: (86.7, 88.4), 1.0: (91.0, 91.5)},
    "scitail": {0.001: (51.2, 81.9), 0.01: (82.2, 88.3), 0.1: (90.5, 91.1), 1.0: (94.3, 95.7)},
}
# Training-set sizes behind those fractions (the paper's counts)
ADAPT_SIZES = {
    "snli": {0.001: 549, 0.01: 5493, 0.1: 54936, 1.0: 549367},
    "scitail": {0.001: 23, 0.01: 235, 0.1: 2359, 1.0: 23596},
}
