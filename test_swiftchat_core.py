"""The chat core's pieces on their own: group commit over a real SQLite file.

GroupCommit saves the chat messages that arrive together in one
transaction, and tells about each in commit order; these tests drive it on
a real event loop with a real Store, as ChatCore does.
"""

import asyncio
import concurrent.futures

import pytest

import store
from swiftchat_core import GroupCommit


@pytest.fixture
def saved_in_batches(tmp_path):
    """(a Store with a user and a room, a save_batch that records each batch's size)."""
    db = store.Store(tmp_path / "batch.db")
    user = db.create_user("teller", "pbkdf2_sha256$1$00$00", "2025-07-20T13:30:00Z")
    room = db.create_room("Told", "", user["id"], "2025-07-20T13:30:00Z")
    writer = concurrent.futures.ThreadPoolExecutor(1)
    sizes = []

    def save_batch(batch):
        sizes.append(len(batch))
        return asyncio.get_running_loop().run_in_executor(writer, db.add_messages, batch)

    yield db, (room["id"], user["id"]), save_batch, sizes
    writer.shutdown(wait=True)
    db.close()


def row(where, content, client_id=None):
    room_id, user_id = where
    return (room_id, user_id, content, 1, client_id)


def test_messages_that_arrive_together_share_one_commit_and_are_told_in_order(saved_in_batches):
    db, where, save_batch, sizes = saved_in_batches
    told = []

    async def many():
        commit = GroupCommit(save_batch)
        first = commit.add(row(where, "first"), lambda saving: told.append(saving.result()["id"]))
        await first  # the writer is busy no more: the next ones arrive together
        rest = [commit.add(row(where, f"then {n}"), lambda s: told.append(s.result()["id"]))
                for n in range(5)]
        return [await saving for saving in [first, *rest]]

    results = asyncio.run(many())
    assert sizes == [1, 5]
    assert told == [result["id"] for result in results] == sorted(told)
    assert [m["content"] for m in db.messages(where[0], 10)] == ["first"] + [f"then {n}" for n in range(5)]


def test_then_runs_before_anyone_awaiting_the_message_resumes(saved_in_batches):
    _, where, save_batch, _ = saved_in_batches
    order = []

    async def awaited():
        commit = GroupCommit(save_batch)
        saving = commit.add(row(where, "hello"), lambda _: order.append("then"))
        await saving
        order.append("awaiting resumed")

    asyncio.run(awaited())
    assert order == ["then", "awaiting resumed"]


def test_a_message_refused_on_its_own_fails_alone(saved_in_batches):
    db, where, save_batch, sizes = saved_in_batches
    told = []

    async def with_a_reused_client_id():
        commit = GroupCommit(save_batch)
        await commit.add(row(where, "original", "k"), lambda _: None)
        batch = [commit.add(row(where, content, client_id), told.append)
                 for content, client_id in [("ok", None), ("changed", "k"), ("also ok", None)]]
        await asyncio.wait(batch)

    asyncio.run(with_a_reused_client_id())
    assert sizes == [1, 3]
    assert [saving.exception() is None for saving in told] == [True, False, True]
    assert isinstance(told[1].exception(), store.ClientIdReused)


def test_a_batch_is_told_in_full_though_one_of_its_callers_gave_up(saved_in_batches):
    """As the loop stops, a cancelled caller must not leave the rest of its batch untold."""
    _, where, save_batch, _ = saved_in_batches
    told = []

    async def two_messages_one_given_up():
        all_told = asyncio.Event()

        def then(saving):
            told.append(saving.result()["content"])
            all_told.set()

        commit = GroupCommit(save_batch)
        given_up = commit.add(row(where, "given up"), then)
        commit.add(row(where, "kept"), then)
        given_up.cancel()  # what asyncio.run does to a waiting post() as the loop stops
        await asyncio.wait_for(all_told.wait(), timeout=5)

    asyncio.run(two_messages_one_given_up())
    assert told == ["kept"]
