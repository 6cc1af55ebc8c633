"""Which multi handle a transfer goes to: the lowest with room for it and its destination;
the lanes share the transport's connections."""

from __future__ import annotations

from aiograb._http.curl_lanes import LANE_WIDTH, Lane, Lanes


def _lanes(capacity: int) -> tuple[Lanes, list[int], list[tuple[int, int]]]:
    made: list[int] = []
    limits: list[tuple[int, int]] = []  # (lane, room) each time a lane's limits are set

    def make(index: int) -> Lane:
        made.append(index)
        return Lane(index, multi=None)

    return Lanes(make, capacity, lambda lane: limits.append((lane.index, lane.room))), made, limits


def test_a_destination_fills_the_lowest_lane_with_room_first() -> None:
    lanes, made, _ = _lanes(capacity=LANE_WIDTH * 4)
    taken = [lanes.take("a") for _ in range(LANE_WIDTH * 2 + 1)]
    assert [lane.index for lane, _ in taken].count(0) == LANE_WIDTH
    assert [lane.index for lane, _ in taken].count(1) == LANE_WIDTH
    assert taken[-1][0].index == 2
    assert made == [0, 1, 2]
    lane0, counts = taken[0]
    lanes.give_back("a", counts, lane0)  # room in lane 0 again: the next one goes there
    assert lanes.take("a")[0].index == 0
    assert lanes.take("b")[0].index == 0  # another destination has lane 0 to itself


def test_the_lanes_share_the_capacity_and_the_first_keeps_the_rest() -> None:
    lanes, made, limits = _lanes(capacity=200)
    assert limits == [(0, 200)]  # the first lane is made at once, with all the room
    for _ in range(LANE_WIDTH * 3):
        lanes.take("a")
    assert made == [0, 1, 2]  # 200 // 64 = 3 lanes at most
    assert [lane.room for lane in lanes.all] == [72, 64, 64]  # 200 in all
    assert limits == [(0, 200), (1, 64), (0, 136), (2, 64), (0, 72)]


def test_past_the_most_lanes_the_one_with_room_where_it_has_fewest_is_taken() -> None:
    lanes, made, _ = _lanes(capacity=150)  # two lanes: rooms 86 and 64
    taken = [lanes.take("a") for _ in range(LANE_WIDTH * 2)]
    assert made == [0, 1]
    extra = [lanes.take("a")[0].index for _ in range(22)]
    assert extra == [0] * 22  # both lanes full of "a"; lane 1 has no room, lane 0 has 22
    for lane, counts in taken[LANE_WIDTH : LANE_WIDTH + 3]:  # three given back in lane 1
        lanes.give_back("a", counts, lane)
    assert [lanes.take("a")[0].index for _ in range(3)] == [1, 1, 1]
    assert made == [0, 1]


def test_another_destination_goes_where_there_is_room() -> None:
    lanes, _, _ = _lanes(capacity=LANE_WIDTH * 2)
    for _ in range(LANE_WIDTH + 1):
        lanes.take("a")  # lane 0 full of "a": a second lane; rooms 64 and 64
    assert [lane.room for lane in lanes.all] == [LANE_WIDTH, LANE_WIDTH]
    assert lanes.take("b")[0].index == 1  # not a 65th connection in lane 0


def test_more_transfers_than_capacity_go_to_the_least_busy_lane() -> None:
    lanes, _, _ = _lanes(capacity=LANE_WIDTH)  # one lane only
    assert {lanes.take(i)[0].index for i in range(LANE_WIDTH + 3)} == {0}
    assert len(lanes.all) == 1


def test_a_destination_is_forgotten_when_its_last_transfer_is_given_back() -> None:
    lanes, _, _ = _lanes(capacity=LANE_WIDTH * 3)
    taken = [lanes.take(("127.0.0.1", 80)) for _ in range(LANE_WIDTH + 5)]
    assert lanes.destinations() == 1
    for lane, counts in taken:
        lanes.give_back(("127.0.0.1", 80), counts, lane)
    assert lanes.destinations() == 0
    assert [lane.added for lane in lanes.all] == [0, 0]
