"""Text units the composer works with: sentences, clauses and content words.

Kept dependency-free (regular expressions only) so that composing never needs a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_RE = re.compile(r"[a-z0-9']+")
SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
# Clause boundaries inside a sentence: commas, semicolons, dashes, and the conjunctions that open
# a subordinate or coordinate clause. Lists ("a red cap, a vest, and a tie") split too, which lets
# the composer drop an item that another aspect already named.
CLAUSE_WORDS = ("while", "with", "as", "which", "where", "before", "after", "then", "whose", "who")
# "and" opens a new clause or list item only before a determiner, pronoun or sequence word;
# elsewhere it joins words inside one phrase ("a green and white scheme") and must not be cut.
AND_OPENERS = ("a", "an", "the", "his", "her", "its", "their", "he", "she", "it", "they", "then",
               "eventually", "finally", "later", "another", "other", "some", "two", "several")
CLAUSE_SPLIT_RE = re.compile(
    r"(\s*[,;]\s+|\s+[-\u2013\u2014]\s+|\s+(?=(?:%s)\s)|\s+(?=and\s+(?:%s)\s))"
    % ("|".join(CLAUSE_WORDS), "|".join(AND_OPENERS))
)
# Pieces shorter than this are glued to their neighbour ("with a green" alone would let the composer
# cut "a green and white scheme" into nonsense), and a sentence's first piece, which is always kept,
# must be long enough to stand as a sentence ("He." or "Initially." would not).
MIN_CLAUSE_WORDS = 4
MIN_HEAD_WORDS = 6
# "both the man and the corridor", "between the car and the wall": the "and" completes a pair that
# the previous piece opened, so the two pieces are one.
PAIR_OPENERS = frozenset({"both", "between", "either", "neither"})
# A sentence that opens with one of these starts with an introductory phrase ("In the latter part
# of the video, the camera rises"): its main clause is the next piece, so the two stay together.
INTRO_WORDS = frozenset("""
in as initially while with after before during throughout at on from when once then finally later
meanwhile over under near behind beside inside outside within across along through toward towards
following starting beginning moving since by for to upon amid against beyond
""".split())
# A piece that opens with one of these continues the subject of the piece before it ("The entire
# assembly, including the wreck, is lifted"), so it cannot be cut from it.
PREDICATE_OPENERS = frozenset("""
is are was were has have had remains remain stays stay appears appear seems seem becomes become
""".split())

# Function words carry no visual content; everything else of three or more letters counts.
# Spatial and temporal prepositions (above, below, before, after...) stay content words: in a
# shot description they are the content.
FUNCTION_WORDS = frozenset("""
a an the and or but nor of to in on at by for with from into onto over under as is are was were be
been being am it its this that these those there their theirs they them he she his her hers him i me
my we our you your while then than which who whom whose what when where how why not no so such very
also just only both each other another any all some more most less few many much one two three up
down out off again further once here can will would should could may might must shall do does did
doing done has have had having if because own same too s t
""".split())


def words(text: str) -> list[str]:
    """Lowercase word tokens; the composer's word budget counts these."""
    return WORD_RE.findall(text.lower())


def word_count(text: str) -> int:
    return len(words(text))


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if len(w) > 2 and w not in FUNCTION_WORDS)


def split_sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    return [s.strip() for s in SENTENCE_END_RE.split(text) if s.strip()]


@dataclass(frozen=True)
class Clause:
    """One piece of a sentence. `lead` is the separator that preceded it (empty for the first)."""

    lead: str
    text: str


def split_clauses(sentence: str) -> list[Clause]:
    """Split a sentence into clauses, keeping each separator with the clause it follows.

    The first clause grows until it can stand alone as a sentence. A later piece that is too short
    to carry a clause of its own ("a large" in "a large, two-story barn") joins the piece after it,
    so that cutting a piece never leaves half a noun phrase behind; a short last piece joins the
    one before it.
    """
    parts = CLAUSE_SPLIT_RE.split(sentence)
    pieces = [Clause("", parts[0])] + [
        Clause(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2) if parts[i + 1].strip()
    ]
    clauses: list[Clause] = []
    pending: Clause | None = None  # a short piece waiting to be glued to the next one
    for piece in pieces:
        if pending is not None:
            piece = Clause(pending.lead, pending.text + piece.lead + piece.text)
            pending = None
        first_word = (words(piece.text) or [""])[0]
        if not clauses:
            clauses.append(piece)
            head_needs_main_clause = first_word in INTRO_WORDS
        elif len(clauses) == 1 and (word_count(clauses[0].text) < MIN_HEAD_WORDS or head_needs_main_clause):
            clauses[0] = Clause("", clauses[0].text + piece.lead + piece.text)
            head_needs_main_clause = False
        elif first_word in PREDICATE_OPENERS:
            last = clauses[-1]
            clauses[-1] = Clause(last.lead, last.text + piece.lead + piece.text)
        elif word_count(piece.text) < MIN_CLAUSE_WORDS:
            pending = piece
        elif piece.text.startswith(("and ", "or ", "nor ")) and PAIR_OPENERS & set(words(clauses[-1].text)):
            last = clauses[-1]
            clauses[-1] = Clause(last.lead, last.text + piece.lead + piece.text)
        else:
            clauses.append(piece)
    if pending is not None:
        last = clauses[-1]
        clauses[-1] = Clause(last.lead, last.text + pending.lead + pending.text)
    return clauses


def join_clauses(clauses: list[Clause]) -> str:
    """Rebuild a sentence from some of its clauses; the result always ends with a full stop."""
    text = clauses[0].text + "".join(c.lead + c.text for c in clauses[1:])
    text = text.strip().rstrip(",;:-\u2013\u2014 ")
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate for umT5: about 1.3 pieces per English word plus punctuation.

    The estimate is deliberately on the high side so that a warning is not missed; pass the
    generator's tokenizer to `compose` for an exact count.
    """
    n_words = word_count(text)
    n_punct = len(re.findall(r"[^\w\s]", text))
    return round(n_words * 1.3 + n_punct * 0.5)
