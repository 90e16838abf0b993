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


def told_to(results, done=None, count=1):
    """A then() for GroupCommit.add that records its result (and sets `done` after `count`)."""
    def then(result):
        results.append(result)
        if done is not None and len(results) >= count:
            done.set()
    return then


def test_messages_that_arrive_together_share_one_commit_and_are_told_in_order(saved_in_batches):
    db, where, save_batch, sizes = saved_in_batches
    told = []

    async def many():
        commit = GroupCommit(save_batch)
        first_told = asyncio.Event()
        commit.add(row(where, "first"), told_to(told, first_told))
        await first_told.wait()  # the writer is busy no more: the next ones arrive together
        all_told = asyncio.Event()
        for n in range(5):
            commit.add(row(where, f"then {n}"), told_to(told, all_told, count=6))
        await asyncio.wait_for(all_told.wait(), timeout=5)

    asyncio.run(many())
    assert sizes == [1, 5]
    ids = [result["id"] for result in told]
    assert ids == sorted(ids) and len(ids) == 6
    assert [m["content"] for m in db.messages(where[0], 10)] == ["first"] + [f"then {n}" for n in range(5)]


def test_then_runs_before_a_read_queued_after_the_batch_resumes(saved_in_batches):
    """What a `since` replay relies on: a read queued behind a batch on the writer sees it told."""
    db, where, save_batch, _ = saved_in_batches
    order = []

    async def replayed():
        commit = GroupCommit(save_batch)
        commit.add(row(where, "hello"), lambda _: order.append("told"))
        await asyncio.sleep(0)  # the batch goes to the writer one loop turn later
        read = save_batch([])  # in line behind the batch, on the same writer thread
        await read
        order.append("read resumed")

    asyncio.run(replayed())
    assert order == ["told", "read resumed"]


def test_a_message_refused_on_its_own_fails_alone(saved_in_batches):
    db, where, save_batch, sizes = saved_in_batches
    told = []

    async def with_a_reused_client_id():
        commit = GroupCommit(save_batch)
        first = asyncio.Event()
        commit.add(row(where, "original", "k"), lambda _: first.set())
        await first.wait()
        done = asyncio.Event()
        for content, client_id in [("ok", None), ("changed", "k"), ("also ok", None)]:
            commit.add(row(where, content, client_id), told_to(told, done, count=3))
        await asyncio.wait_for(done.wait(), timeout=5)

    asyncio.run(with_a_reused_client_id())
    assert sizes == [1, 3]
    assert [isinstance(result, Exception) for result in told] == [False, True, False]
    assert isinstance(told[1], store.ClientIdReused)


def test_a_then_that_fails_does_not_leave_the_rest_of_its_batch_untold(saved_in_batches, caplog):
    _, where, save_batch, _ = saved_in_batches
    told = []

    async def two_messages_one_failing():
        done = asyncio.Event()

        def fails(result):
            raise RuntimeError("a broken listener")

        commit = GroupCommit(save_batch)
        commit.add(row(where, "fails"), fails)
        commit.add(row(where, "kept"), told_to(told, done))
        await asyncio.wait_for(done.wait(), timeout=5)

    asyncio.run(two_messages_one_failing())
    assert [result["content"] for result in told] == ["kept"]
    assert "telling about a saved message failed" in caplog.text
