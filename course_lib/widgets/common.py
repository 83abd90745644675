"""The explorer and quiz widgets every lecture builds on."""
from __future__ import annotations

import base64
import html
import io
from typing import Callable, Sequence

import ipywidgets as widgets
from IPython.display import Image, clear_output, display
from matplotlib.figure import Figure

__all__ = ["FigureExplorer", "MultipleChoice"]


class FigureExplorer(widgets.VBox):
    """Controls above a figure that ``draw(figure, **values)`` redraws on every change.

    Args:
        controls: name -> widget with a ``value``; the names are ``draw``'s keyword arguments.
        draw: draws into the (cleared) figure.
        figsize: size of the figure in inches (at 100 dots per inch).

    The figure is drawn once when the explorer is built, so ``explorer.figure`` always
    shows the current values of the controls.
    """

    def __init__(self, controls: dict[str, widgets.ValueWidget], draw: Callable[..., None], *,
                 figsize: tuple[float, float] = (9.0, 3.4)):
        super().__init__()
        self.controls = dict(controls)
        self.figure = Figure(figsize=figsize, dpi=100, layout="constrained")
        self.png = b""
        self._holding = False
        self._draw = draw
        self.output = widgets.interactive_output(self._redraw, self.controls)
        row = widgets.HBox(list(self.controls.values()),
                           layout=widgets.Layout(flex_flow="row wrap"))
        self.children = [row, self.output]

    def set(self, **values) -> None:
        """Move several controls at once and redraw once, e.g. ``explorer.set(a=-1.0, b=0.0)``."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"expected controls among {sorted(self.controls)}, got {unknown}")
        if all(self.controls[name].value == value for name, value in values.items()):
            return
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        with self.output:
            clear_output(wait=True)
            self._redraw(**{name: c.value for name, c in self.controls.items()})

    def _redraw(self, **values) -> None:
        if self._holding:
            return
        self.figure.clear()
        self._draw(self.figure, **values)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        self.png = buffer.getvalue()
        display(Image(data=self.png, format="png"))

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = (f"A figure with controls {', '.join(self.controls)}; "
                                    "run the notebook to move them.")
            if self.png:
                bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        return bundle


class MultipleChoice(widgets.VBox):
    """A "check yourself" question: pick an option, read why it is right or wrong.

    Args:
        question: the question (HTML; ``$...$`` is typeset).
        options: the answers offered, as plain text.
        answer: index of the correct option.
        explanations: one explanation per option, shown once that option is picked.
    """

    def __init__(self, question: str, options: Sequence[str], answer: int,
                 explanations: Sequence[str]):
        if len(explanations) != len(options) or not 0 <= answer < len(options):
            raise ValueError(f"expected one explanation per option and 0 <= answer < "
                             f"{len(options)}, got {len(explanations)} explanations for "
                             f"{len(options)} options and answer={answer}")
        super().__init__()
        self.answer = answer
        self.explanations = list(explanations)
        self.question = widgets.HTMLMath(question)
        self.choices = widgets.RadioButtons(options=list(options), value=None,
                                            layout=widgets.Layout(width="max-content"))
        self.feedback = widgets.HTMLMath("")
        self.choices.observe(self._give_feedback, "value")
        self.children = [self.question, self.choices, self.feedback]

    @property
    def correct(self) -> bool | None:
        """Whether the picked option is the right one (``None`` before any pick)."""
        index = self.choices.index
        return None if index is None else index == self.answer

    def _give_feedback(self, _change=None) -> None:
        if self.correct is None:
            self.feedback.value = ""
            return
        verdict = "Correct." if self.correct else "Not quite."
        self.feedback.value = f"<b>{verdict}</b> {self.explanations[self.choices.index]}"

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            items = "".join(f"<li>{html.escape(o)}</li>" for o in self.choices.options)
            letter = chr(ord("A") + self.answer)
            bundle["text/plain"] = self.question.value
            bundle["text/html"] = (
                f"<div>{self.question.value}<ol type='A'>{items}</ol><details><summary>Answer"
                f"</summary>{letter}. {self.explanations[self.answer]}</details></div>")
        return bundle


def _slider(name: str, value: float, low: float, high: float, step: float) -> widgets.FloatSlider:
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=name,
                               continuous_update=False, readout_format=".2f")


