"""Review texts for the sample generator, in English and Chinese, whose tone follows the rating.

A review is put together from parts drawn independently (vectorized, no Python loop per
review): an opening, one or two remarks on an aspect of the purchase (quality, delivery,
price, size, service, packaging, durability, the look) that name the item's category in
one of several words, and a closing, each in five tones (very negative .. very positive),
with intensifiers, emoji and punctuation varied. A 3-star review mixes one good and one
bad remark; a share of reviews say a little less or more than their stars (people are not
consistent), so a classifier cannot read the rating off a handful of fixed phrases, and
the many combinations make a verbatim repeat of a review rare (a model has to learn the
words and characters, not memorize whole lines).

``review_texts(rng, rating, zh, category)`` returns one text per review as an Arrow array.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# category nouns, by the generator's category order
_NOUNS_EN = (
    ("headphones", "charger", "speaker", "gadget", "cable"),
    ("necklace", "ring", "bracelet", "earrings"),
    ("lamp", "cushion", "pan", "blanket", "vase"),
    ("jacket", "dress", "shirt", "jeans", "shoes"),
    ("yoga mat", "ball", "bottle", "running shoes"),
    ("hose", "planter", "shears", "seeds"),
    ("puzzle", "toy car", "doll", "board game"),
    ("cream", "shampoo", "lipstick", "perfume"),
    ("book", "novel", "cookbook", "paperback"),
    ("dog bed", "leash", "cat toy", "pet food"),
    ("notebook", "pens", "stapler", "desk organizer"),
    ("coffee", "tea", "snacks", "pasta"),
)
_NOUNS_ZH = (
    ("耳机", "充电器", "音箱", "数据线"),
    ("项链", "戒指", "手链", "耳环"),
    ("台灯", "抱枕", "锅", "毯子"),
    ("外套", "裙子", "衬衫", "鞋子"),
    ("瑜伽垫", "水壶", "跑鞋", "球"),
    ("水管", "花盆", "剪刀", "种子"),
    ("拼图", "玩具车", "娃娃", "桌游"),
    ("面霜", "洗发水", "口红", "香水"),
    ("书", "小说", "菜谱", "这本书"),
    ("狗窝", "牵引绳", "猫玩具", "猫粮"),
    ("笔记本", "笔", "订书机", "收纳盒"),
    ("咖啡", "茶叶", "零食", "意面"),
)

# tone 0 = very negative, 1 = negative, 2 = neutral, 3 = positive, 4 = very positive
_OPEN_EN = (
    ("Terrible.", "Awful experience.", "What a waste of money.", "Never again.", "Total disappointment.",
     "Worst purchase this year.", "I want my money back.", "Do not buy this."),
    ("Not great.", "Disappointed.", "Expected more.", "Not happy with this one.", "Hmm... not what I hoped.",
     "A bit of a letdown.", "Could be a lot better."),
    ("It's okay.", "Mixed feelings.", "Average.", "Fine I guess.", "Nothing special.", "So-so.",
     "Does what it says more or less."),
    ("Pretty good.", "Happy with it.", "Nice buy.", "Good purchase.", "Satisfied.", "Works for me.",
     "Glad I ordered it."),
    ("Absolutely love it!", "Fantastic!", "Amazing.", "Best purchase in ages!", "Perfect.", "Wow!",
     "Exceeded my expectations.", "Five stars without a doubt."),
)
_OPEN_ZH = (
    ("太差了。", "非常失望。", "浪费钱。", "再也不买了。", "垃圾。", "后悔买了。", "千万别买。"),
    ("不太满意。", "有点失望。", "一般偏差。", "和想象的不一样。", "不怎么样。", "比预期差。"),
    ("还行吧。", "一般般。", "中规中矩。", "凑合用。", "没什么特别的。", "马马虎虎。"),
    ("挺好的。", "满意。", "不错。", "值得购买。", "还不错，推荐。", "很满意这次购物。"),
    ("超级喜欢！", "太棒了！", "非常满意！", "完美！", "强烈推荐！", "五星好评！", "物超所值！"),
)
# aspect remarks; {n} is the item's noun. Index: [tone][aspect] -> variants
_ASPECT_EN = (
    (  # very negative
        ("The {n} broke after {d} days.", "The {n} fell apart almost at once.", "Cheap and flimsy {n}."),
        ("Delivery took {w} weeks and nobody answered my emails.", "It arrived {d} days late and damaged."),
        ("Way overpriced for such junk.", "Not worth a fraction of the price."),
        ("The {n} is nothing like the photos.", "Completely wrong size and useless."),
        ("Customer service was rude and unhelpful.", "Support ignored me for {w} weeks."),
        ("The box was crushed and the {n} scratched.", "Came with parts missing."),
        ("Stopped working after {d} days.", "The {n} is already broken."),
    ),
    (  # negative
        ("The {n} feels cheap.", "Quality of the {n} is poor.", "The {n} looks worn after a week."),
        ("Delivery was slow.", "Shipping took longer than promised.", "It came {d} days late."),
        ("A bit too expensive for what it is.", "Overpriced."),
        ("Smaller than described.", "The {n} does not fit well.", "Colour is off compared to the picture."),
        ("Support was slow to reply.", "The return process was a hassle."),
        ("Packaging was damaged.", "Arrived with a small dent."),
        ("Started to wear out quickly.", "Not very durable."),
    ),
    (  # neutral
        ("The {n} is average quality.", "Quality is acceptable but nothing more.", "The {n} is fine for everyday use."),
        ("Delivery was on time.", "Shipping took about a week.", "Arrived as expected."),
        ("Price is fair I suppose.", "You get what you pay for."),
        ("Size is roughly as described.", "Looks a little different from the photo."),
        ("Did not need to contact support.", "Support answered eventually."),
        ("Plain packaging.", "Packaging was basic."),
        ("Too early to say how long it lasts.", "Seems durable enough so far."),
    ),
    (  # positive
        ("The {n} is good quality.", "Solid {n}, well made.", "The {n} feels sturdy."),
        ("Delivery was fast.", "Arrived in {d} days.", "Quick shipping."),
        ("Good value for money.", "Fair price for the quality."),
        ("Fits well.", "Exactly as pictured.", "The {n} looks nice."),
        ("Friendly customer service.", "Support was helpful."),
        ("Nicely packed.", "Well packaged."),
        ("Holds up well after a few weeks.", "Seems built to last."),
    ),
    (  # very positive
        ("The {n} is excellent quality!", "Superb {n}, beautifully made.", "Best {n} I have ever owned."),
        ("Lightning fast delivery!", "Arrived the next day - brilliant.", "Super quick shipping."),
        ("Incredible value for a steal.", "Worth every penny."),
        ("Fits perfectly.", "Even better than the photos!", "The {n} looks gorgeous."),
        ("Outstanding service - they went above and beyond.", "The support team was wonderful."),
        ("Gorgeous packaging and perfect as a gift.", "Beautifully wrapped."),
        ("Still like new after months of use.", "Built like a tank."),
    ),
)
_ASPECT_ZH = (
    (
        ("{n}用了{d}天就坏了。", "{n}质量太差，一碰就散。", "做工粗糙，{n}很劣质。"),
        ("快递等了{w}个星期，客服也不回。", "晚到了{d}天，还摔坏了。"),
        ("这个价格简直是抢钱。", "完全不值这个价。"),
        ("{n}和图片完全不一样。", "尺寸完全不对，没法用。"),
        ("客服态度很恶劣。", "找客服{w}个星期都没人理。"),
        ("箱子压扁了，{n}也刮花了。", "少了配件。"),
        ("{d}天就不能用了。", "{n}已经坏了。"),
    ),
    (
        ("{n}感觉很廉价。", "{n}质量一般偏差。", "{n}用了一周就旧了。"),
        ("物流有点慢。", "发货比承诺的晚。", "晚到了{d}天。"),
        ("有点贵了。", "性价比不高。"),
        ("比描述的小。", "{n}不太合适。", "颜色和图片有差别。"),
        ("客服回复很慢。", "退货很麻烦。"),
        ("包装有破损。", "到货有个小凹痕。"),
        ("很快就磨损了。", "不太耐用。"),
    ),
    (
        ("{n}质量一般。", "质量还可以，没有惊喜。", "{n}日常用够了。"),
        ("按时到货。", "大概一周到的。", "物流正常。"),
        ("价格还算合理。", "一分钱一分货。"),
        ("尺寸和描述差不多。", "和图片有一点点差别。"),
        ("没有联系过客服。", "客服最后还是回复了。"),
        ("包装很普通。", "包装简单。"),
        ("耐不耐用还不好说。", "目前看还算结实。"),
    ),
    (
        ("{n}质量不错。", "{n}做工扎实。", "{n}很结实。"),
        ("物流很快。", "{d}天就到了。", "发货快。"),
        ("性价比高。", "价格合理。"),
        ("很合身。", "和图片一样。", "{n}很好看。"),
        ("客服很热情。", "客服很有帮助。"),
        ("包装很好。", "包装仔细。"),
        ("用了几周还很好。", "感觉很耐用。"),
    ),
    (
        ("{n}质量超好！", "{n}做工精美。", "这是我买过最好的{n}！"),
        ("物流超快！", "第二天就到了，太赞了。", "发货神速。"),
        ("超值，捡到宝了。", "每一分钱都花得值。"),
        ("非常合身。", "比图片还好看！", "{n}漂亮极了。"),
        ("客服服务一流。", "客服特别贴心。"),
        ("包装精美，送人很合适。", "包装得很漂亮。"),
        ("用了几个月还像新的一样。", "超级耐用。"),
    ),
)
_CLOSE_EN = (
    ("Returning it.", "Avoid.", "One star is too many.", "Asked for a refund.", "Never ordering here again."),
    ("Probably won't buy again.", "Not recommended.", "I'll look elsewhere next time.", "Meh."),
    ("Might buy again if on sale.", "Okay for the price.", "Neither good nor bad.", ""),
    ("Would recommend.", "Will order again.", "Happy customer.", "Thanks!"),
    ("Already ordered another one!", "Highly recommend!", "Will definitely buy again!", "Love this shop!"),
)
_CLOSE_ZH = (
    ("已经申请退款。", "大家别买。", "一星都嫌多。", "再也不来这家了。"),
    ("应该不会回购。", "不推荐。", "下次换别家。", "就这样吧。"),
    ("打折的话可能再买。", "这个价格还行。", "不好不坏。", ""),
    ("推荐购买。", "还会回购。", "好评。", "谢谢卖家！"),
    ("已经回购了！", "强烈推荐！", "一定会再买！", "爱了爱了！"),
)
_EMOJI = (("😡", "👎", "🤬", "😞"), ("😕", "👎", "🙁"), ("😐", "🤷"), ("🙂", "👍"), ("😍", "❤️", "👍👍", "🥰"))
_INTENSIFIER_EN = ("", "", "", "Really ", "Honestly ", "To be fair ", "Overall ", "Well ")

#: how often a review's words say less or more than its stars (one tone / two tones lower or higher)
TONE_NOISE, TONE_NOISE_FAR = 0.15, 0.04
#: how often a clear review adds a remark of the other side ("good quality but delivery was slow")
OTHER_SIDE = 0.2


class _Pool:
    """Flat Arrow array of phrases with (start, count) per group, for vectorized draws."""

    def __init__(self, groups: list[list[str]]):
        self.count = np.array([len(g) for g in groups], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        self.values = pa.array([s for g in groups for s in g], pa.string())

    def draw(self, rng, group: np.ndarray) -> pa.Array:
        idx = self.start[group] + np.minimum((rng.random(len(group)) * self.count[group]).astype(np.int64),
                                             self.count[group] - 1)
        return self.values.take(pa.array(idx))


def _aspect_groups(table, nouns) -> list[list[str]]:
    """Groups indexed [tone, category, aspect] -> every variant with every noun of the category
    (and a few day / week counts)."""
    groups = []
    for tone in range(5):
        for c in range(len(nouns)):
            for variants in table[tone]:
                out = []
                for v in variants:
                    for n in nouns[c]:
                        for d, w in ((2, 2), (3, 3), (5, 2), (10, 4)):
                            out.append(v.format(n=n, d=d, w=w))
                groups.append(sorted(set(out)))
    return groups


_N_ASPECTS = len(_ASPECT_EN[0])
_N_CATS = len(_NOUNS_EN)
_POOLS: dict | None = None


def _pools() -> dict:
    global _POOLS
    if _POOLS is None:
        _POOLS = {
            "open": _Pool([list(g) for g in _OPEN_EN] + [list(g) for g in _OPEN_ZH]),
            "aspect": _Pool(_aspect_groups(_ASPECT_EN, _NOUNS_EN) + _aspect_groups(_ASPECT_ZH, _NOUNS_ZH)),
            "close": _Pool([list(g) for g in _CLOSE_EN] + [list(g) for g in _CLOSE_ZH]),
            "emoji": _Pool([list(g) for g in _EMOJI]),
            "intens": _Pool([list(_INTENSIFIER_EN), [""]]),
        }
    return _POOLS


def _maybe(rng, arr: pa.Array, p: float) -> pa.Array:
    """``arr`` where a coin with probability ``p`` says so, else the empty string."""
    keep = pa.array(rng.random(len(arr)) < p)
    return pc.if_else(keep, arr, pa.scalar("", pa.string()))


def review_tones(rng, rating: np.ndarray) -> np.ndarray:
    """The tone (0..4) a review's words take: its stars minus one, one step off for a share
    ``TONE_NOISE`` of reviews and two steps for a share ``TONE_NOISE_FAR``."""
    tone = np.clip(np.asarray(rating, dtype=np.int64) - 1, 0, 4)
    u = rng.random(len(tone))
    size = np.where(u < TONE_NOISE_FAR, 2, np.where(u < TONE_NOISE_FAR + TONE_NOISE, 1, 0))
    step = np.where(rng.random(len(tone)) < 0.5, -1, 1) * size
    return np.clip(tone + step, 0, 4)


def review_texts(rng, rating: np.ndarray, zh: np.ndarray, category: np.ndarray) -> pa.Array:
    """One review text per row: ``rating`` 1..5, ``zh`` True for a Chinese writer, ``category``
    the item's category index (the generator's ``CATEGORIES`` order)."""
    n = len(rating)
    if n == 0:
        return pa.array([], pa.string())
    P = _pools()
    lang = np.asarray(zh, dtype=bool).astype(np.int64)
    cat = np.clip(np.asarray(category, dtype=np.int64), 0, _N_CATS - 1)
    tone = review_tones(rng, rating)
    # a neutral review has one good and one bad remark, the others two remarks of their tone
    # (the second sometimes one step milder: "solid, but delivery was slow")
    a1 = rng.integers(0, _N_ASPECTS, n)
    a2 = (a1 + 1 + rng.integers(0, _N_ASPECTS - 1, n)) % _N_ASPECTS
    t1 = np.where(tone == 2, np.where(rng.random(n) < 0.5, 1, 3), tone)
    milder = np.where(tone < 2, tone + 1, np.where(tone > 2, tone - 1, tone))
    u2 = rng.random(n)
    other = np.where(tone < 2, 3, 1)
    t2 = np.where(tone == 2, 4 - t1, np.where(u2 < OTHER_SIDE, other, np.where(u2 < OTHER_SIDE + 0.2, milder, tone)))
    per_lang = 5 * _N_CATS * _N_ASPECTS

    def aspect(t, a):
        return P["aspect"].draw(rng, lang * per_lang + (t * _N_CATS + cat) * _N_ASPECTS + a)

    opening = _maybe(rng, P["open"].draw(rng, lang * 5 + tone), 0.7)
    first = aspect(t1, a1)
    second = _maybe(rng, aspect(t2, a2), 0.6)
    closing = _maybe(rng, P["close"].draw(rng, lang * 5 + tone), 0.5)
    emoji = _maybe(rng, P["emoji"].draw(rng, tone), 0.12)
    intens = P["intens"].draw(rng, lang)
    sep = pc.if_else(pa.array(lang == 1), pa.scalar("", pa.string()), pa.scalar(" ", pa.string()))
    # English: "Really " before the first remark, lower-casing its first letter
    first_en = pc.if_else(pc.equal(intens, ""), first,
                          pc.binary_join_element_wise(intens, pc.utf8_lower(pc.utf8_slice_codeunits(first, 0, 1)),
                                                      pc.utf8_slice_codeunits(first, 1), ""))
    first = pc.if_else(pa.array(lang == 1), first, first_en)
    parts = [opening, first, second, closing, emoji]
    text = parts[0]
    for p in parts[1:]:
        glue = pc.if_else(pc.or_(pc.equal(text, ""), pc.equal(p, "")), pa.scalar("", pa.string()), sep)
        text = pc.binary_join_element_wise(text, glue, p, "")
    # some people write in lower case, some shout
    low = pa.array((rng.random(n) < 0.1) & (lang == 0))
    text = pc.if_else(low, pc.utf8_lower(text), text)
    shout = pa.array((rng.random(n) < 0.05) & (lang == 0) & (tone == 0))
    text = pc.if_else(shout, pc.utf8_upper(text), text)
    # the events file is written without CSV quoting: no delimiter, quote or line break in a text
    for ch in (",", '"', "\n", "\r"):
        text = pc.replace_substring(text, ch, " ")
    return text
