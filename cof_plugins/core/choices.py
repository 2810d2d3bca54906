"""Which option a multiple-choice answer picks, read by rules, or undecided.

``read_choice`` returns a letter, ``NONE_PICKED`` (the answer refuses or is empty: wrong,
whatever the ground truth), a set of letters (the answer is one of these and no rule can say
which: wrong when the ground truth is not among them) or None (undecided: ask the judge).
A rule settles only what it can read without doubt; everything else is left to the judge.

How an answer is read, after ``choice_text`` has cleaned and tokenised it:

1. The whole answer is one option's text ("Blue.", "A handbag") or one choice ("B", "(b)",
   "Option B", "\\boxed{B}"). A bare letter that is also another option's text ("A" when
   option B reads "A") is undecided.
2. The answer opens with a choice ("B. blue", "(B) blue because ...", "B is correct") or an
   option's text ("No, the light is green"); the rest may explain but must not name another
   option, as a letter or as its text, unless negated ("not red", "(A) is wrong").
3. A conclusion names the choice: "the answer is", "Answer:", "option", "I choose", "go
   with", "therefore", "答案是", "选". The last one counts. A firm conclusion ("The answer
   is B") overrides the reasoning before it but not an opening choice that differs; a hedged
   one ("it might be", "I think", "it's") stands only if nothing else in the answer names
   another option.
4. Otherwise the last line is a choice (reasoning, then "B"), or exactly one option is named
   anywhere ("The scarf is black."), or the answer refuses ("None of the options").

"Names an option" means a letter in a choice form (bracketed, after "option"/"answer", or a
capital standing alone: not "A" as an article), an ordinal ("the second option"), or an
option's text, where a longer text covers the shorter texts inside it ("dark red" is not
"red"). A name is negated by "not", "no", "n't", "neither/nor", "rather than", "instead of",
不/没 up to three words before it in the same clause, or by a verdict after it ("B is wrong").

An answer longer than ``MAX_ANSWER_CHARS`` is not read at all (undecided). Within it, every
step is a pass over the tokens with a bounded look around each one: linear, and about
20 ms at the bound on the most hostile text (``bench/parsing.py``).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from cof_plugins.core.choice_text import (
    ARTICLES,
    CLAUSE_BREAKS,
    CONNECTORS,
    FILLERS,
    FIRM,
    HEDGES,
    LETTER_VERBS,
    NEGATION_WINDOW,
    NEGATORS,
    OPENERS,
    ORDINALS,
    REFUSAL_WORDS,
    REVISIONS,
    RIGHT_AS_ADVERB,
    TEXT_ENDS,
    VERDICT_VERBS,
    WEAK,
    WRONG,
    WRONG_VERBS,
    Options,
    OptionTexts,
    Token,
    clean,
    normal,
    option_texts,
    tokens,
)

MAX_ANSWER_CHARS = 2048  # an answer is a line or two; longer ones go to the judge
NONE_PICKED = ""
Reading = str | frozenset[str] | None


class _Name(NamedTuple):
    """One place where the answer names an option."""

    letter: str
    start: int  # token index
    end: int
    strong: bool  # a letter in a choice form, an ordinal, or an option's text
    negated: bool
    text: bool = False  # named by its text, not by a letter


def read_choice(pred: str, options: Options = None) -> Reading:
    """What ``pred`` picks among ``options`` (see the module docstring)."""
    if len(pred) > MAX_ANSWER_CHARS:
        return None
    toks = tokens(clean(pred).strip())
    if not any(t.word for t in toks):
        return NONE_PICKED
    return _Answer(toks, option_texts(options)).read()


class _Answer:
    def __init__(self, toks: list[Token], opts: OptionTexts):
        self.toks, self.opts = toks, opts
        self.choices: dict[int, _Name | None] = {}  # memo of _choice: each token read once
        self.words = [i for i, t in enumerate(toks) if t.word]
        self.norm = {i: normal(toks[i].low) for i in self.words}
        self.single = {
            alias[0]: letter
            for entries in opts.by_first.values()
            for alias, letter in entries
            if len(alias) == 1 and len(alias[0]) == 1 and alias[0].isascii()
        }
        # Words less articles ("a" that is no letter A): where options' texts are looked for.
        articles = {i for i in self.words if self.norm[i] in ARTICLES and self._choice(i) is None}
        self.kept = [i for i in self.words if i not in articles] or self.words
        self.names = self._names()
        self.text_at = {}
        for name in reversed(self.names):
            if name.text:
                self.text_at[name.start] = name

    def read(self) -> Reading:
        whole = self._whole()
        if whole is not None:
            return whole
        opening = self._opening()
        if opening is not None and (opening.negated or self._refuted(opening)):
            opening = None
        conclusion = self._conclusion()
        if conclusion is not None:
            if opening is not None and opening.letter != conclusion[0].letter:
                return None
            return conclusion[0].letter if self._stands(*conclusion) else None
        if opening is not None:
            return opening.letter if self._clear_after(opening) else self._pair(opening)
        return self._fallback()

    # --- rule 1: the whole answer ------------------------------------------------------------
    def _whole(self) -> Reading:
        kept = tuple(self.norm[i] for i in self.kept)
        if kept in self.opts.shared:
            return self.opts.shared[kept]
        if "".join(t.low for t in self.toks) in ("n/a", "na"):
            return None if self.opts.refusal_option else NONE_PICKED
        choice = self._choice(0)
        if choice is not None and self._only_marks_after(choice.end):
            return choice.letter
        by_text = next((name for name in self.names if self._spans_all(name)), None)
        return by_text.letter if by_text is not None else self._letter_list()

    def _spans_all(self, name: _Name) -> bool:
        return name.text and not name.negated and self._text_bounds() == (name.start, name.end)

    def _text_bounds(self) -> tuple[int, int]:
        return self.kept[0], self.kept[-1] + 1

    def _only_marks_after(self, at: int) -> bool:
        return all(not t.word for t in self.toks[at:])

    def _letter_list(self) -> Reading:
        """ "B or C", "A/D", "(A) (B)": one of these options, the rule cannot say which."""
        letters, at = set(), 0
        while at < len(self.toks):
            tok = self.toks[at]
            if tok.low in CONNECTORS or (at > 0 and not tok.word):
                at += 1
                continue
            choice = self._choice(at)
            if choice is None or choice.letter not in self.opts.letters:
                return None
            letters.add(choice.letter)
            at = choice.end
        return frozenset(letters) if len(letters) > 1 else None

    # --- rule 2: an opening choice -----------------------------------------------------------
    def _opening(self) -> _Name | None:
        at = 0
        while at < len(self.toks) and self.toks[at].raw in (">", "-", "\n"):
            at += 1
        choice = self._choice(at)
        if choice is not None:
            return choice
        first = self.text_at.get(self._text_bounds()[0])
        if first is None or first.end >= len(self.toks):
            return first
        after = self.toks[first.end]
        return first if not after.word or after.low in TEXT_ENDS else None  # not "Right answer"

    def _clear_after(self, pick: _Name) -> bool:
        """Nothing after ``pick`` names another option, and ``pick`` itself is not refuted."""
        if self._refuted(pick):
            return False
        return all(n.letter == pick.letter or n.negated for n in self.names if n.start >= pick.end)

    def _pair(self, opening: _Name) -> Reading:
        """ "A. red" (A white, C red): letter and text disagree; one of the two was meant."""
        rest = [n for n in self.names if n.start >= opening.end and not n.negated]
        if len(rest) != 1 or not self._only_marks_after(rest[0].end):
            return None
        return frozenset({opening.letter, rest[0].letter}) if opening.text != rest[0].text else None

    # --- rule 3: a conclusion ----------------------------------------------------------------
    def _conclusion(self) -> tuple[_Name, bool] | None:
        """The last (choice, firm) that follows a conclusion phrase."""
        found = None
        self.firm_picks: list[_Name] = []
        for i in self.words:
            head = self.toks[i].low
            if head == "with" and i > 0 and self.toks[i - 1].low in ("go", "going", "goes"):
                head = "choose"
            if head in FIRM or head in WEAK:
                pick = self._after_head(i + 1, firm=head in FIRM)
                if pick is not None and found is not None and pick[0] == found[0]:
                    pick = (pick[0], pick[1] or found[1])  # "the answer is B": firm
                found = pick or found
                if pick is not None and pick[1]:
                    self.firm_picks.append(pick[0])
        return found

    def _after_head(self, at: int, *, firm: bool) -> tuple[_Name, bool] | None:
        for _ in range(8):
            if at >= len(self.toks):
                return None
            choice = self._choice(at) or self._text_at(at)
            if choice is not None:
                return (choice, firm) if not self._refuted(choice) else None
            if self.toks[at].low not in FILLERS:
                return None
            firm = firm and self.toks[at].low not in HEDGES
            at += 1
        return None

    def _text_at(self, at: int) -> _Name | None:
        while at < len(self.toks) and self.toks[at].low in ARTICLES:
            at += 1
        return self.text_at.get(at)

    def _stands(self, pick: _Name, firm: bool) -> bool:
        others = [n for n in self.names if n.letter != pick.letter and not n.negated]
        if firm:
            return not any(n.start >= pick.end for n in others) and self._revised(pick)
        return not others

    def _revised(self, pick: _Name) -> bool:
        """An earlier conclusion that differs must be taken back ("but", "actually", ...)."""
        for earlier in self.firm_picks:
            if earlier.letter != pick.letter and earlier.start < pick.start:
                between = {t.low for t in self.toks[earlier.end : pick.start]}
                if not between & REVISIONS:
                    return False
        return True

    # --- rule 4: the last line, one option named, or a refusal -------------------------------
    def _fallback(self) -> Reading:
        line = self._last_line()
        if line is not None:
            return line
        named = {n.letter for n in self.names if not n.negated}
        if len(named) == 1 and all(n.negated or n.strong for n in self.names):
            return named.pop()
        if not self.names and not self.opts.refusal_option and self._refuses():
            return NONE_PICKED
        return None

    def _last_line(self) -> str | None:
        breaks = [i for i, t in enumerate(self.toks) if t.low == "\n"]
        if not breaks:
            return None
        starts = [0] + [b + 1 for b in breaks]
        heads = {c.letter for s in starts if (c := self._choice(s)) is not None}
        last = next(s for s in reversed(starts) if s < len(self.toks))
        choice = self._choice(last)
        if choice is None or len(heads) > 1:
            return None
        after = [n for n in self.names if n.start >= choice.end and not n.negated]
        return choice.letter if all(n.letter == choice.letter for n in after) else None

    def _refuses(self) -> bool:
        words = [self.toks[i].low for i in self.words]
        if set(words) & (REFUSAL_WORDS - {"not", "no"}):
            return True
        return bool(set(itertools.pairwise(words)) & {("not", "visible"), ("not", "shown")})

    # --- names of options --------------------------------------------------------------------
    def _names(self) -> list[_Name]:
        starts = [at for at, t in enumerate(self.toks) if _may_start_choice(t)]
        names = [c for at in starts if (c := self._mention(at)) is not None]
        names += self._text_names()
        names.sort(key=lambda n: (n.start, -(n.end - n.start)))
        return names

    def _mention(self, at: int) -> _Name | None:
        """A letter named in a choice form at ``at`` (weak when it is a bare capital)."""
        choice = self._choice(at)
        if choice is None or choice.letter not in self.opts.letters:
            return None
        if not choice.strong and not self.toks[choice.start].raw.isupper():
            return None  # "e.g.", "i.e.": lower-case letters in prose are no choices
        return choice

    def _choice(self, at: int) -> _Name | None:
        """A choice at token ``at``: "(B)", "[b]", "B)", "B.", "B", "second option"."""
        if at not in self.choices:
            self.choices[at] = self._read_choice_at(at)
        return self.choices[at]

    def _read_choice_at(self, at: int) -> _Name | None:
        toks = self.toks
        if at >= len(toks):
            return None
        ordinal = ORDINALS.get(toks[at].low)
        if ordinal and at + 1 < len(toks) and toks[at + 1].low in ("option", "choice", "one"):
            return self._name(ordinal, at, at + 2, strong=True)
        closer = OPENERS.get(toks[at].raw)
        j = at + 1 if closer else at
        if j >= len(toks) or not _is_letter(toks[j]):
            return None
        letter = toks[j].raw.upper()
        if closer:
            ok = j + 1 < len(toks) and toks[j + 1].raw == closer
            return self._name(letter, at, j + 2, strong=True) if ok else None
        return self._bare(letter, j)

    def _bare(self, letter: str, j: int) -> _Name | None:
        toks, nxt = self.toks, self.toks[j + 1] if j + 1 < len(self.toks) else None
        before = self.toks[j - 1].low if j > 0 else "\n"
        keyword = before in ("option", "choice", "letter", "answer", ":")
        if nxt is None or nxt.low == "\n":
            return self._letter(letter, j, strong=keyword)
        if not nxt.word:
            glued = not nxt.spaced and j + 2 < len(toks) and toks[j + 2].word
            if glued and not toks[j + 2].spaced and nxt.raw == "-":
                return None  # "T-shirt"
            label = nxt.raw in ").:" and before in ("\n", ">", "-")
            label = label and any(t.word for t in toks[j + 2 : j + 6])
            return self._letter(letter, j, strong=keyword or label)
        if toks[j].low == "i" or (toks[j].low == "a" and nxt.low not in LETTER_VERBS):
            return None  # an article or a pronoun
        return self._letter(letter, j, strong=keyword)

    def _letter(self, letter: str, j: int, *, strong: bool) -> _Name | None:
        """A bare letter; None when it is also another option's whole text ("A" is option B)."""
        owner = self.single.get(self.toks[j].low)
        if not strong and owner is not None and owner != letter:
            return None
        return self._name(letter, j, j + 1, strong=strong)

    def _name(self, letter: str, start: int, end: int, *, strong: bool) -> _Name:
        return _Name(letter, start, end, strong, self._negated(start, end))

    def _text_names(self) -> list[_Name]:
        """Every place an option's text occurs; texts inside a longer text are dropped."""
        found, words = [], self.kept
        for k, i in enumerate(words):
            for alias, letter in self.opts.by_first.get(self.norm[i], ()):
                end = k + len(alias)
                if end > len(words) or tuple(self.norm[w] for w in words[k:end]) != alias:
                    continue
                if not self._adverb(alias, words[end - 1] + 1):
                    found.append((i, words[end - 1] + 1, letter))
        found.sort(key=lambda f: (f[0], -f[1]))
        names, reach = [], -1
        for start, end, letter in found:
            if end > reach and not self._reads_as_letter(start, end, letter):
                name = self._name(letter, start, end, strong=True)
                names.append(_Name(letter, start, end, True, name.negated, text=True))
                reach = end
        return names

    def _adverb(self, alias: tuple[str, ...], after: int) -> bool:
        if alias != ("right",) or after >= len(self.toks):
            return False
        return self.toks[after].low in RIGHT_AS_ADVERB

    def _reads_as_letter(self, start: int, end: int, letter: str) -> bool:
        """Option B's text "A", written where a choice may stand, is also letter A."""
        raw = self.toks[start].raw
        if end - start != 1 or not _is_letter(self.toks[start]) or raw.upper() == letter:
            return False
        before = self.toks[start - 1].raw if start > 0 else "\n"
        return raw.upper() in self.opts.letters and before not in ").:"

    def _negated(self, start: int, end: int) -> bool:
        before = []
        at = start - 1
        while at >= 0 and len(before) < NEGATION_WINDOW and self.toks[at].low not in CLAUSE_BREAKS:
            if self.toks[at].word:
                before.append(self.toks[at].low)
            at -= 1
        if any(w in NEGATORS for w in before) and not _not_only(before):
            return True
        return self._refuted_at(end)

    def _refuted(self, name: _Name) -> bool:
        return self._refuted_at(name.end)

    def _refuted_at(self, end: int) -> bool:
        """ "B is wrong", "(A) doesn't fit": a verdict against the option named before ``end``."""
        after = [t.low for t in self.toks[end : end + 4] if t.word][:3]
        if not after:
            return False
        if after[0] in WRONG_VERBS:
            return True
        return after[0] in VERDICT_VERBS and bool(set(after[1:]) & WRONG)


def _not_only(before: list[str]) -> bool:
    return len(before) >= 2 and before[1] == "not" and before[0] == "only"


def _may_start_choice(tok: Token) -> bool:
    return _is_letter(tok) or tok.raw in OPENERS or tok.low in ORDINALS


def _is_letter(tok: Token) -> bool:
    return len(tok.raw) == 1 and tok.raw.isascii() and tok.raw.isalpha()
