"""``example-counting``: documents that count in English words ("twelve, thirteen, fourteen, ...").

A dataset yields :class:`~harness.api.Document` objects with ids that never change between runs: the runner
draws training windows and held-out contexts from them by id, seeded, and checks the two never overlap.
"""

from __future__ import annotations

from typing import Iterator

from harness.api import Dataset, Document, hookimpl, InputError, Param

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    """0 ≤ n < 1000 in words: 342 → "three hundred forty two"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spell(rest))


class Counting(Dataset):
    name = "example-counting"
    description = "Documents counting upwards in English words, one starting point per document; no files"
    version = "1"
    params = (
        Param("documents", int, default=40, min=1, help="how many documents"),
        Param("numbers", int, default=25, min=1, help="numbers spelled out per document"),
    )

    def documents(self) -> Iterator[Document]:
        count, numbers = self.option("documents"), self.option("numbers")
        if count * numbers > 1000:  # documents never share a number, so no context is quoted by another document
            raise InputError(f"{self.name}: documents × numbers must be at most 1000 (counting stops at 999), "
                             f"got {count} × {numbers}")  # fmt: skip
        for k in range(count):
            start = k * numbers
            yield Document(f"count/{start}", ", ".join(spell(n) for n in range(start, start + numbers)) + ".")


@hookimpl
def harness_register_datasets(register):
    register(Counting)
