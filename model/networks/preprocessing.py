"""Raw text to BERT inputs inside the TensorFlow graph, for SavedModels.

The same steps as the pipeline's tokenizer (Hugging Face's BertNormalizer +
BertPreTokenizer + WordPiece, which agrees with google-research's
FullTokenizer), written with core TensorFlow string ops and one
tensorflow-text op, so that an exported model tokenizes exactly as the
model was trained:

    invalid UTF-8 -> U+FFFD; U+0000, U+FFFD and other control/format chars
    dropped, whitespace -> " "; CJK ideographs spaced out; then, uncased:
    NFD, combining marks (Mn) dropped, lower-cased (per character);
    split on whitespace and punctuation (Unicode P* and ASCII symbols);
    WordPiece with "##" continuations, words over 100 bytes -> [UNK].

Ops a serving binary must have (`OPS_NEEDED`): all core TensorFlow except
`WordpieceTokenizeWithOffsets`, `RegexSplitWithOffsets` and `NormalizeUTF8`
from tensorflow-text. These are tf-text's oldest ops (1.x), present in
every TF Serving build that links tf-text; the packing below is plain
ragged arithmetic, not tf-text's `RoundRobinTrim` (newer, and missing from
stock servers: tensorflow/serving#2267).

Measured agreement with the pipeline's tokenizer and with all-MiniLM-L6-v2's
own tokenizer.json: see tests/model/networks/test_preprocessing.py.
"""

import hashlib

import tensorflow as tf
import tensorflow_text as tf_text

from tfrecords.generation import DEFAULT_MAX_SEQ_LENGTH, MAX_CHARS_PER_WORD
from tfrecords.shards import DatasetError
from tfrecords.vocab import read_vocab, special_ids

OPS_NEEDED = ("WordpieceTokenizeWithOffsets", "RegexSplitWithOffsets", "NormalizeUTF8")

# Unicode punctuation, plus the ASCII symbols BERT counts as punctuation.
_PUNCTUATION = r"[\p{P}!-/:-@\[-`{-~]"
_WHITESPACE = r"[\s\p{Zs}]"
# Characters BERT drops (controls and format chars; \t\n\r become spaces first).
_DROPPED = r"[\x{0}\x{fffd}\p{Cc}\p{Cf}\p{Co}]"
# The CJK ideograph blocks of BERT's _is_chinese_char.
_CJK = (r"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
        r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])")


class _VocabInitializer(tf.lookup.TextFileInitializer):
    """vocab.txt -> {token: line number}, its table named by the vocabulary's content.

    A table's shared name is the key of its resource in TensorFlow's resource
    manager: tables of one name are one table, and the first to initialize it
    wins. TextFileInitializer names it after its `filename` argument, here an
    Asset, whose str() is "<...Asset object at 0x7f...>": a memory address.
    A vocabulary built after another one was freed could then get the old
    one's address, name and ids, in silence (seen: a test process tokenized
    all 10,033 lead sections with the previous test's vocabulary). The same
    name is baked into every exported SavedModel, where it could collide with
    another export loaded in the same process. Named by a digest of the
    vocabulary, two tables share a resource only if they hold the same map.
    """

    def __init__(self, asset, vocab_size: int, digest: str):
        super().__init__(asset, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                         tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, vocab_size=vocab_size)
        self._digest = digest

    @property
    def _shared_name(self):
        return f"bert_vocab_{self._vocab_size}_{self._digest}"


class BertTextPreprocessor(tf.Module):
    """Strings -> WordPiece ids -> packed [CLS] A [SEP] (B [SEP]) inputs, in-graph.

    Args:
        vocab_file: the model's vocab.txt (tracked as a SavedModel asset).
        do_lower_case: uncased model (lower-case, strip accents).
        seq_length: length of the packed inputs.
        mask_token: with split_on_mask, the literal text that becomes the mask
            id (for masked-LM requests); otherwise it is ordinary text, split
            as the pipeline splits it ("[", "mask", "]").

    Example:
        >>> pre = BertTextPreprocessor("tests/fixtures/vocab.txt", seq_length=8)  # doctest: +SKIP
        >>> pre.pack(pre.tokenize(tf.constant(["the cat"])))["input_ids"]  # doctest: +SKIP
    """

    def __init__(self, vocab_file: str, do_lower_case: bool = True,
                 seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
                 name: str = "bert_text_preprocessor"):
        super().__init__(name=name)
        try:
            vocab = read_vocab(vocab_file)
            ids = special_ids(vocab, f"vocabulary {vocab_file}")
        except DatasetError as e:
            raise ValueError(str(e)) from None
        self.do_lower_case = do_lower_case
        self.seq_length = seq_length
        self.cls_id, self.sep_id, self.mask_id, self.pad_id, self.unk_id = (
            ids["[CLS]"], ids["[SEP]"], ids["[MASK]"], ids["[PAD]"], ids["[UNK]"])
        self.vocab_size = len(vocab)
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        digest = hashlib.sha256("\n".join(vocab).encode("utf-8")).hexdigest()[:16]
        self.table = tf.lookup.StaticHashTable(
            _VocabInitializer(self.vocab_file, len(vocab), digest), default_value=-1)
        self._wordpiece = tf_text.WordpieceTokenizer(
            self.table, suffix_indicator="##", max_bytes_per_word=MAX_CHARS_PER_WORD,
            token_out_type=tf.int64, unknown_token="[UNK]")

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """BERT's text cleaning (and, uncased, lower-casing and accent stripping)."""
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                            replacement_char=0xFFFD)
        text = tf.strings.regex_replace(text, r"[\t\n\r]", " ")
        text = tf.strings.regex_replace(text, _DROPPED, "")
        text = tf.strings.regex_replace(text, _CJK, r" \1 ")
        if self.do_lower_case:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
            # Capital sigma -> σ first: ICU (like Python) would make a word-final
            # one ς; the pipeline's tokenizer lower-cases char by char (σ).
            text = tf.strings.regex_replace(text, "Σ", "σ")
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def tokenize(self, text: tf.Tensor, split_on_mask: bool = False) -> tf.RaggedTensor:
        """[B] strings -> [B, None] int32 WordPiece ids (no [CLS]/[SEP]).

        With split_on_mask, each literal "[MASK]" in the text becomes the mask id.
        """
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        if not split_on_mask:
            return self._tokenize_flat(text)
        pieces = tf.strings.split(text, sep="[MASK]")  # [B, P]
        ids = self._tokenize_flat(pieces.flat_values)  # [B*P, T]
        ids = tf.RaggedTensor.from_row_splits(ids, pieces.row_splits)  # [B, P, T]
        # Put a mask id after every piece, then drop each row's last one.
        masks = tf.fill([ids.values.nrows(), 1], tf.constant(self.mask_id, tf.int32))
        with_masks = tf.concat([ids.values, tf.RaggedTensor.from_tensor(masks)], axis=1)
        flat = tf.RaggedTensor.from_row_splits(with_masks, ids.row_splits).merge_dims(1, 2)
        return flat[:, :-1]

    def _tokenize_flat(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenize_to_words(text).merge_dims(1, 2)

    def tokenize_to_words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[B] strings -> [B, words, wordpieces] int32 ids: TF Hub's `tokenize` layout."""
        text = self.normalize(tf.reshape(tf.convert_to_tensor(text, tf.string), [-1]))
        words, _, _ = tf_text.regex_split_with_offsets(
            text, delim_regex_pattern=f"{_WHITESPACE}+|{_PUNCTUATION}",
            keep_delim_regex_pattern=_PUNCTUATION)
        return tf.cast(self._wordpiece.tokenize(words), tf.int32)  # [B, W, P]

    def tokenize_words(self, text: tf.Tensor):
        """[B] strings split on whitespace, each word tokenized alone (NER's view).

        Returns (ids [B, T] ragged, first-subword position of each word [B, W]
        ragged, counting [CLS] as position 0). A word whose characters are all
        dropped becomes [UNK], so every word has a position.
        """
        words = tf.strings.split(tf.reshape(tf.convert_to_tensor(text, tf.string), [-1]))
        pieces = self._tokenize_flat(words.flat_values)  # [N, P]
        unk = tf.RaggedTensor.from_tensor(tf.fill([pieces.nrows(), 1], self.unk_id))
        lengths = tf.maximum(tf.cast(pieces.row_lengths(), tf.int32), 1)
        padded = tf.concat([pieces, unk], axis=1)
        pieces = tf.ragged.boolean_mask(padded, tf.ragged.range(
            tf.cast(padded.row_lengths(), tf.int32)) < lengths[:, None])
        ids = tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)
        before = tf.cumsum(lengths, exclusive=True)  # tokens before each word, all rows
        row_first = tf.gather(tf.concat([before, [tf.reduce_sum(lengths)]], 0),
                              tf.cast(words.row_splits[:-1], tf.int32))
        row_of_word = tf.cast(words.value_rowids(), tf.int32)
        positions = 1 + before - tf.gather(row_first, row_of_word)
        return ids, tf.RaggedTensor.from_row_splits(positions, words.row_splits), \
            tf.RaggedTensor.from_row_splits(lengths, words.row_splits)

    def pack(self, a: tf.RaggedTensor, b: tf.RaggedTensor = None,
             seq_length: int = None) -> dict:
        """[CLS] a [SEP] (b [SEP]) padded to seq_length; longest-first truncation.

        A row of b with no tokens packs a alone (one [SEP]), so an empty second
        text means "no second segment". Returns input_ids, input_mask,
        segment_ids, each [B, seq_length] int32.
        """
        L = seq_length or self.seq_length
        a = tf.cast(a, tf.int32)
        len_a = tf.cast(a.row_lengths(), tf.int32)
        if b is None:
            b = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32),
                                                 tf.zeros_like(a.row_lengths()))
        b = tf.cast(b, tf.int32)
        len_b = tf.cast(b.row_lengths(), tf.int32)
        has_b = tf.cast(len_b > 0, tf.int32)
        budget = L - 2 - has_b
        # google-research's truncate_seq_pair (pop from the longer, b on ties)
        # in closed form: a keeps min(len_a, max(ceil(budget/2), budget - len_b)).
        keep_a = tf.minimum(len_a, tf.maximum((budget + 1) // 2, budget - len_b))
        keep_b = tf.minimum(len_b, budget - keep_a)
        ids, mask, types = place_segments([a, b], [keep_a, keep_b], [tf.ones_like(has_b), has_b],
                                          L, self.cls_id, self.sep_id, self.pad_id)
        return {"input_ids": ids, "input_mask": mask, "segment_ids": types}


def place_segments(segments, keeps, seps, length, cls_id: int, sep_id: int, pad_id: int):
    """[CLS] s0[:k0] [SEP] s1[:k1] [SEP] ... padded to length, on a dense [B, length] grid.

    Every output column says where its id comes from (selects and gathers):
    ragged masks, concats and to_tensor cost ~0.4 ms a batch-1 serving call,
    more than the whole rest of tokenization (measured, see README).

    Args:
        segments: RaggedTensors [B, tokens] int32.
        keeps: [B] int32 per segment, tokens it keeps (at most its length).
        seps: [B] int32 per segment, 1 where its [SEP] follows it, else 0.
        length: the packed length (int or scalar int32 tensor).
    Returns:
        (ids, mask, type ids), each [B, length] int32; segment i and its [SEP]
        have type id i.
    """
    col = tf.range(length)[None, :]
    ids = tf.zeros_like(col + keeps[0][:, None]) + pad_id  # [B, L], L static when it is
    types = tf.zeros_like(ids)
    ids = tf.where(col == 0, cls_id, ids)
    first = 1
    for i, (segment, keep, sep) in enumerate(zip(segments, keeps, seps)):
        keep, sep = keep[:, None], sep[:, None]
        values = tf.concat([segment.values, [pad_id]], 0)  # never empty
        start = tf.cast(segment.row_splits[:-1], tf.int32)[:, None]
        index = tf.clip_by_value(start + col - first, 0, tf.size(values) - 1)
        inside = tf.logical_and(col >= first, col < first + keep)
        is_sep = tf.logical_and(col == first + keep, sep > 0)
        ids = tf.where(inside, tf.gather(values, index), ids)
        ids = tf.where(is_sep, sep_id, ids)
        types = tf.where(tf.logical_or(inside, is_sep), i, types)
        first = first + keep + sep
    return ids, tf.cast(col < first, tf.int32), types


PACKED = ("input_ids", "input_mask", "segment_ids")


def trim_to_longest(batch: dict, per_token: tuple = PACKED, multiple: int = 1) -> dict:
    """Cuts a batch's per-token [..., L] entries to its longest sequence (dynamic padding).

    A review of 30 tokens then costs 30 positions, not max_seq_length. Used by
    the serving signatures and by fine-tuning (which adds 2-D labels to
    per_token); other entries (class labels, span positions) pass through.
    With multiple > 1 the length is rounded up to a multiple of it (at most L),
    so that an XLA-compiled model sees a few shapes, not one per length.
    """
    batch = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    mask = tf.cast(batch["input_mask"], tf.int32)  # [B, L], or [B, choices, L]
    longest = tf.reduce_max(tf.reduce_sum(mask, axis=-1))
    if multiple > 1:
        longest = tf.minimum((longest + multiple - 1) // multiple * multiple, tf.shape(mask)[-1])
    return {k: v[..., :longest] if k in per_token else v for k, v in batch.items()}


def round_robin_lengths(lengths: tf.Tensor, budget) -> tf.Tensor:
    """How many tokens each segment keeps when a budget is dealt round-robin.

    tf-text's RoundRobinTrimmer in closed form with core ops (that op is newer
    than stock TF Serving builds: tensorflow/serving#2267): one token per
    segment in turn, earlier segments first, until the budget or the
    segments run out. With k the largest count such that sum(min(len, k)) <=
    budget, every segment keeps min(len, k), and the budget left over goes,
    one each, to the first segments longer than k.

    Args:
        lengths: [B, N] int32 segment lengths.
        budget: scalar int32, tokens available for all N segments together.
    Returns:
        [B, N] int32 kept lengths.
    """
    budget = tf.maximum(tf.cast(budget, tf.int32), 0)
    ks = tf.range(budget + 1)  # candidate k
    used = tf.reduce_sum(tf.minimum(lengths[:, None, :], ks[None, :, None]), axis=2)  # [B, K]
    k = tf.reduce_sum(tf.cast(used <= budget, tf.int32), axis=1) - 1  # [B]
    base = tf.minimum(lengths, k[:, None])
    extra = budget - tf.reduce_sum(base, axis=1)
    longer = tf.cast(lengths > k[:, None], tf.int32)
    rank = tf.cumsum(longer, axis=1, exclusive=True)
    return base + longer * tf.cast(rank < extra[:, None], tf.int32)


def pack_segments(segments, seq_length, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """TF Hub's `bert_pack_inputs`: [CLS] s0 [SEP] s1 [SEP] ..., round-robin trimmed.

    Args:
        segments: a list of 1-3 RaggedTensors [B, tokens] or [B, words, wordpieces].
        seq_length: scalar int (or int32 tensor), the packed length.
    Returns:
        input_word_ids, input_mask, input_type_ids: [B, seq_length] int32; segment i
        (and its [SEP]) has type id i. Every segment gets its [SEP], even an empty one,
        as tf-text's combine_segments does.
    """
    segs = [tf.cast(s.merge_dims(1, -1) if s.ragged_rank > 1 else s, tf.int32)
            for s in segments]
    seq_length = tf.cast(seq_length, tf.int32)
    lengths = tf.stack([tf.cast(s.row_lengths(), tf.int32) for s in segs], axis=1)
    keep = round_robin_lengths(lengths, seq_length - len(segs) - 1)
    ids, mask, types = place_segments(
        segs, tf.unstack(keep, num=len(segs), axis=1),
        [tf.ones_like(lengths[:, 0])] * len(segs), seq_length, cls_id, sep_id, pad_id)
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
