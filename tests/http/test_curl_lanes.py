"""Which multi handle a transfer goes to: the lowest with room for its destination."""

from __future__ import annotations

from aiograb._http.curl_lanes import LANE_WIDTH, Lane, Lanes


def _lanes(most: int) -> tuple[Lanes, list[int]]:
    made: list[int] = []

    def make(index: int) -> Lane:
        made.append(index)
        return Lane(index, multi=None)

    return Lanes(make, most), made


def test_a_destination_fills_the_lowest_lane_with_room_first() -> None:
    lanes, made = _lanes(most=4)
    taken = [lanes.take("a") for _ in range(LANE_WIDTH * 2 + 1)]
    assert [lane.index for lane, _ in taken].count(0) == LANE_WIDTH
    assert [lane.index for lane, _ in taken].count(1) == LANE_WIDTH
    assert taken[-1][0].index == 2
    assert made == [0, 1, 2]
    lane0, counts = taken[0]
    lanes.give_back("a", counts, lane0)  # room in lane 0 again: the next one goes there
    assert lanes.take("a")[0].index == 0
    assert lanes.take("b")[0].index == 0  # another destination has lane 0 to itself


def test_past_the_most_lanes_the_least_full_one_is_taken() -> None:
    lanes, made = _lanes(most=2)
    taken = [lanes.take("a") for _ in range(LANE_WIDTH * 2)]
    for lane, counts in taken[:3]:  # three given back in lane 0
        lanes.give_back("a", counts, lane)
    assert made == [0, 1]
    extra = [lanes.take("a")[0].index for _ in range(4)]
    assert extra == [0, 0, 0, 0]  # room for 3 in lane 0; then both full: the lower of a tie
    assert lanes.take("a")[0].index == 1  # 65 against 64: the least full
    assert made == [0, 1]


def test_a_destination_is_forgotten_when_its_last_transfer_is_given_back() -> None:
    lanes, _ = _lanes(most=3)
    taken = [lanes.take(("127.0.0.1", 80)) for _ in range(LANE_WIDTH + 5)]
    assert lanes.destinations() == 1
    for lane, counts in taken:
        lanes.give_back(("127.0.0.1", 80), counts, lane)
    assert lanes.destinations() == 0
