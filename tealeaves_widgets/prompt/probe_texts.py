"""Natural English paragraphs shipped with the package: the head atlas's
built-in "text" probes (see `prompt.probes`). Plain prose on varied topics,
with ordinary punctuation and line breaks, written for this package."""

from __future__ import annotations

PARAGRAPHS: tuple[str, ...] = (
    "The old lighthouse stood at the end of a narrow spit of rock, and for most of the year "
    "nobody went near it. In winter the waves broke over the path, so the keeper's family "
    "had to wait for low tide before carrying supplies across. Her grandmother remembered "
    "the night the lamp failed: the whole village came down to the harbour with lanterns, "
    "and they stood in the rain until the fishing boats were safely home.",
    "To make a simple loaf of bread, mix flour, water, salt and a little yeast in a large "
    "bowl. Knead the dough for ten minutes, until it feels smooth and springs back when you "
    "press it. Leave it somewhere warm for an hour or two; it should double in size. Then "
    "shape it, let it rise again, and bake it in a hot oven until the crust is brown and the "
    "bottom sounds hollow when tapped.",
    "The committee met on Tuesday to discuss the new library. Some members wanted a larger "
    "reading room, while others argued that the money would be better spent on longer "
    "opening hours. After a long debate, they agreed on a compromise: the building would "
    "keep its current size, but the upper floor would be opened to students in the evenings "
    "during the examination period.",
    "Rivers shape the land more slowly than anyone can see. Over thousands of years, a "
    "stream cuts through soft rock, carries sand and gravel towards the sea, and leaves "
    "wide valleys where it once ran fast and narrow. Farmers settle on the flat ground "
    "beside it, because the soil there is rich; towns grow at the places where the water is "
    "shallow enough to cross.",
    "Dear Sam,\nThank you for the photographs from your trip. The one of the mountain lake "
    "at sunrise is beautiful, and I have put it on the wall above my desk. We are all well "
    "here, although the garden has suffered in the dry weather. Write again soon, and tell "
    "me whether you still plan to visit in the autumn.\nWith love,\nAnna",
    "Most people learn to ride a bicycle as children and never forget how. Balance, it "
    "turns out, is less about staying still than about making many small corrections: the "
    "rider steers slightly towards the side on which the bicycle is falling, and the wheels "
    "move back underneath. This is why it is easier to balance when moving quickly than when "
    "crawling along at walking pace.",
    "The market opens at dawn. By seven o'clock the stalls are covered with apples, "
    "onions, cheese, fresh fish and bunches of flowers, and the air smells of coffee and "
    "warm bread. Traders call out their prices; customers compare, bargain and fill their "
    "baskets. By noon it is almost over, and the square is swept clean before the cafes put "
    "out their tables for lunch.",
    "When the first trains crossed the country, clocks in different towns showed different "
    "times. Each town kept its own noon, set by the sun, which made timetables confusing "
    "and sometimes dangerous. The railway companies eventually agreed on a standard time, "
    "and within a few decades the whole nation had adopted it. It is a small change that "
    "most people now take for granted.",
    "Our team spent the afternoon testing the new software. The first version crashed "
    "whenever a file name contained a space, which was embarrassing but easy to fix. The "
    "second problem was harder: reports that took a few seconds on a small data set took "
    "several minutes on a large one. We traced it to a loop that searched the whole list "
    "for every item, and rewrote it with a dictionary.",
    "In spring the birds return to the marsh in great numbers. Geese arrive first, "
    "followed by ducks, herons and small brown warblers that sing from the reeds at dusk. "
    "Visitors are asked to keep to the wooden walkways, to leave their dogs at home, and to "
    "speak quietly near the nesting areas. Volunteers count the birds each week and share "
    "the results on a board by the gate.",
    "My neighbour repairs old clocks in a small workshop behind his house. He keeps every "
    "spring, screw and tiny wheel in labelled jars, and he writes down each step before he "
    "takes anything apart. Last month a woman brought him a clock that had belonged to her "
    "great-grandfather; it had not ticked for forty years. When he handed it back, running "
    "again, she laughed and said the house would finally feel complete.",
    "Learning a second language as an adult is slow at first. Words that seemed familiar in "
    "the morning are gone by the evening, and the grammar has exceptions to every rule. "
    "Still, small habits help: reading a page of a newspaper each day, labelling objects "
    "around the kitchen, and talking with a patient friend, even when the sentences come out "
    "wrong. After a year, many learners notice that they no longer translate in their heads.",
    "The train left the city just after six, when the streets were still dark and quiet. "
    "By the time the sun rose, the carriages were passing through wide fields of wheat, "
    "small stations with painted benches, and rivers where mist hung low over the water. "
    "A conductor walked slowly through the aisles, checking tickets and answering questions "
    "about connections. Most passengers slept, read, or simply watched the hills roll by.",
    "Good meetings usually start with a clear question. Before inviting anyone, the organiser "
    "should write down what needs to be decided, who has to agree, and what information "
    "people need to read beforehand. During the meeting, one person keeps notes; at the end, "
    "the group repeats the decisions aloud and names who will do what, and by when. A short "
    "summary, sent the same afternoon, prevents most of the confusion that follows.",
)
"""Fourteen paragraphs, 962 words (1,141 tokens for the embedded model: eight
windows of the default 128 tokens, the default `ProbeSizes.n_text`)."""
