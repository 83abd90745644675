"""Typical mistakes in worksheet 11, each with the hint its check must give."""
import torch

from course_lib import models


def _loss(kind):
    def answer(field, x1, x0, t):
        tt = t[:, None]
        if kind == "reversed":
            return (field(t, tt * x0 + (1 - tt) * x1) - (x1 - x0)).pow(2).sum(1).mean()
        xt = (1 - tt) * x0 + tt * x1
        if kind == "endpoint":
            return (field(t, xt) - x1).pow(2).sum(1).mean()
        return (field(t, xt) - (x1 - x0)).pow(2).mean()
    return answer


def _count_fm_twice(model, x):
    return 2, 10


WRONG = {
    "ex11_1": [(_loss("endpoint"), "velocity"), (_loss("reversed"), "backwards"), (_loss("elementwise"), "coordinates")],
    "ex11_2": [(lambda sample: models.cnf(2, hidden=16, n_hidden=2), "above 0.1"), (lambda sample: None, "CNF"),
               (lambda sample: models.cnf(2, hidden=16, n_hidden=2).flows[0], "bare CNF.*the model around it")],
    "ex11_3": [(_count_fm_twice, "once"), (lambda model, x: (1, 3), "counted 3")],
    "ex11_4": [(lambda model, data, n: -(-model.log_prob(data.sample((n,))).mean().item() - data.entropy().item()),
                "wrong sign")],
}
