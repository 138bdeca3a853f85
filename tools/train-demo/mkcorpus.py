#!/usr/bin/python3
"""mkcorpus.py - the demo model's training and held-out text from the KJV.

    bible -f Gen1:1-Rev22:21 > kjv.txt      # Debian: bible-kjv, bible-kjv-text
    mkcorpus.py kjv.txt OUTDIR

The input has one verse a line, "Ge1:1 In the beginning ...". Writes:
  OUTDIR/train.txt    the training documents, each starting with the BOS
                      spelling, to be tokenized with special tokens parsed:
                      every training chapter as plain text ("Genesis 1",
                      a blank line, then one verse a line), and short
                      single-turn chats in DeepSeek-R1's template (a
                      question naming a word, an answer of the verse that
                      holds it and the next ones) so the chat tokens the
                      service uses mean something to the model;
  OUTDIR/heldout.txt  the held-out chapters (every 50th, starting with the
                      25th), plain text, never trained on;
  OUTDIR/heldout-test.txt  four of them (poetry, prophecy, narrative; about
                      3700 tokens), the slice make check runs through ktx.
Deterministic: the same input gives the same files.
"""
import collections
import os
import random
import re
import sys

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"

# The abbreviations bible(1) prints, in canonical order, and the book names.
BOOKS = [
    ("Ge", "Genesis"), ("Exo", "Exodus"), ("Lev", "Leviticus"), ("Num", "Numbers"),
    ("Deu", "Deuteronomy"), ("Josh", "Joshua"), ("Jdgs", "Judges"), ("Ruth", "Ruth"),
    ("1Sm", "1 Samuel"), ("2Sm", "2 Samuel"), ("1Ki", "1 Kings"), ("2Ki", "2 Kings"),
    ("1Chr", "1 Chronicles"), ("2Chr", "2 Chronicles"), ("Ezra", "Ezra"), ("Neh", "Nehemiah"),
    ("Est", "Esther"), ("Job", "Job"), ("Psa", "Psalms"), ("Prv", "Proverbs"),
    ("Eccl", "Ecclesiastes"), ("SSol", "Song of Solomon"), ("Isa", "Isaiah"), ("Jer", "Jeremiah"),
    ("Lam", "Lamentations"), ("Eze", "Ezekiel"), ("Dan", "Daniel"), ("Hos", "Hosea"),
    ("Joel", "Joel"), ("Amos", "Amos"), ("Obad", "Obadiah"), ("Jonah", "Jonah"),
    ("Mic", "Micah"), ("Nahum", "Nahum"), ("Hab", "Habakkuk"), ("Zep", "Zephaniah"),
    ("Hag", "Haggai"), ("Zec", "Zechariah"), ("Mal", "Malachi"), ("Mat", "Matthew"),
    ("Mark", "Mark"), ("Luke", "Luke"), ("John", "John"), ("Acts", "Acts"),
    ("Rom", "Romans"), ("1Cor", "1 Corinthians"), ("2Cor", "2 Corinthians"), ("Gal", "Galatians"),
    ("Eph", "Ephesians"), ("Phi", "Philippians"), ("Col", "Colossians"),
    ("1Th", "1 Thessalonians"), ("2Th", "2 Thessalonians"), ("1Tim", "1 Timothy"),
    ("2Tim", "2 Timothy"), ("Titus", "Titus"), ("Phmn", "Philemon"), ("Heb", "Hebrews"),
    ("Jas", "James"), ("1Pet", "1 Peter"), ("2Pet", "2 Peter"), ("1Jn", "1 John"),
    ("2Jn", "2 John"), ("3Jn", "3 John"), ("Jude", "Jude"), ("Rev", "Revelation"),
]

HELDOUT_EVERY, HELDOUT_FIRST = 50, 25
TEST_CHAPTERS = [("Job", 40), ("Psalms", 98), ("Isaiah", 47), ("Luke", 3)]
CHAT_EVERY = 8          # about one chat per this many training verses
SEED = 1611

QUESTIONS = [
    "What does the Bible say about {w}?",
    "Tell me about {w}.",
    "What is written about {w}?",
    "Give me a verse about {w}.",
    "Speak to me of {w}.",
    "What do the scriptures say of {w}?",
]
WHO = ["Who was {w}?", "Tell me about {w}.", "What is said of {w}?"]

STOP = set("""
about above after again against also among and before behold being below between both
came cometh come could doth down each even every from gave given have hath having here
into know known made make many more most much must neither nothing other over said saith
shall shalt should some such than that thee their them then there therefore these they
thine thing things this those thou thus thy unto upon very were what when where which
while whom whose will with within without would shall also went say says spake
""".split())


def read_chapters(path):
    """[(book name, chapter number, [verse text, ...])] in canonical order."""
    names = dict(BOOKS)
    chapters = []
    ref = re.compile(r"^([0-9]?[A-Za-z]+)([0-9]+):([0-9]+) (.*)$")
    with open(path, encoding="ascii") as f:
        for line in f:
            m = ref.match(line.rstrip("\n"))
            if not m:
                sys.exit("mkcorpus: unexpected line: %r" % line[:80])
            book, chap, text = names[m.group(1)], int(m.group(2)), m.group(4).strip()
            if not chapters or chapters[-1][:2] != (book, chap):
                chapters.append((book, chap, []))
            chapters[-1][2].append(text)
    if len(chapters) != 1189:
        sys.exit("mkcorpus: expected 1189 chapters, got %d" % len(chapters))
    return chapters


def chapter_text(book, chap, verses):
    return "%s %d\n\n%s\n" % (book, chap, "\n".join(verses))


def keyword(verse, freq, rng):
    """A word of the verse worth asking about, and whether it is a name:
    one of its two rarest words that occur at least 3 times in the whole
    text (rare words are mostly nouns and names; the floor drops oddities)."""
    words = re.findall(r"[A-Za-z]+", verse)
    cands = set()
    for i, w in enumerate(words):
        if len(w) < 4 or w.lower() in STOP or freq[w.lower()] < 3:
            continue
        if w[0].isupper() and i > 0:
            cands.add((w, True))
        elif w.islower():
            cands.add((w, False))
    cands = sorted(cands, key=lambda c: (freq[c[0].lower()], c[0]))[:2]
    return rng.choice(cands) if cands else None


def chat(question, answer):
    return "%s%s%s<think>\n\n</think>\n\n%s%s" % (USER, question, ASSISTANT, answer, EOS)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkcorpus.py KJV.txt OUTDIR")
    chapters = read_chapters(sys.argv[1])
    rng = random.Random(SEED)
    freq = collections.Counter(w.lower() for _, _, verses in chapters
                               for v in verses for w in re.findall(r"[A-Za-z]+", v))
    train_docs, heldout, test = [], [], []
    for i, (book, chap, verses) in enumerate(chapters):
        if i % HELDOUT_EVERY == HELDOUT_FIRST:
            heldout.append(chapter_text(book, chap, verses))
            if (book, chap) in TEST_CHAPTERS:
                test.append(heldout[-1])
            continue
        train_docs.append(chapter_text(book, chap, verses))
        for v in range(len(verses)):
            if rng.randrange(CHAT_EVERY):
                continue
            kw = keyword(verses[v], freq, rng)
            if kw is None:
                continue
            w, is_name = kw
            q = rng.choice(WHO if is_name else QUESTIONS).format(w=w)
            n = rng.randint(1, 3)
            train_docs.append(chat(q, "\n".join(verses[v:v + n])))
    rng.shuffle(train_docs)
    os.makedirs(sys.argv[2], exist_ok=True)
    with open(os.path.join(sys.argv[2], "train.txt"), "w", encoding="utf-8") as f:
        for d in train_docs:
            f.write(BOS + d)
    with open(os.path.join(sys.argv[2], "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(heldout))
    with open(os.path.join(sys.argv[2], "heldout-test.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(test))
    print("mkcorpus: %d training documents, %d held-out chapters" % (len(train_docs), len(heldout)))


if __name__ == "__main__":
    main()
