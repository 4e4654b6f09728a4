"""Runs moto's AWS emulator, serving one request at a time, with DynamoDB
transactions that cost what their items cost.

One request at a time: moto_server serves requests on many threads, and
its DynamoDB applies a transaction item by item. Served one at a time, each
request is atomic, and the emulator keeps DynamoDB's guarantees for one
transaction (it is then stricter than DynamoDB, whose transactions run
concurrently: see docs/dynamodb.md).

Transactions: moto applies a transaction's items one by one, and to undo
them when a condition fails it first copies every table the transaction
names, whole. A Strata save is one transaction on the application's one
table, so each save cost time in proportion to everything recorded before
it (0.5 to 0.9 s a save after 600 saves), and the examples' concurrency
tests ran out of retries waiting in the queue. Here a
transaction first checks the conditions of all its items against the
table as it is; if any fails it is cancelled with the same reasons, one
per item, having written nothing. Only then are the writes applied, each
keeping a copy of the one item it replaces, so that a write the emulator
refuses (an invalid update, an item too large) puts back those items and
no more. That is the same all-or-nothing outcome for a cost that does not
grow with the table. Two items of one transaction never name the same key
(DynamoDB refuses that, and so does moto), so checking every condition
before any write sees what moto's item-by-item order saw.

Client request tokens: DynamoDB applies a TransactWriteItems call once per
ClientRequestToken (for ten minutes): a repeat of a call that succeeded
succeeds without writing again. The AWS SDK sends the same token on each
of its own retries, after a request whose answer was lost, and Strata
relies on it (docs/dynamodb.md). moto ignores the token, so a retried save
met its own writes and failed; here a repeated token of a transaction that
succeeded returns success, and one with other items is refused with
IdempotentParameterMismatchException, as DynamoDB does.

Queries: moto answers a query of one partition by sorting every item of
the table, then keeping that partition's items in the key condition's
range. A follower polling the head of the log, where nothing is new yet,
paid for the whole table each time (about 0.35 s after 1,000 saves), and
served one request at a time, the polls held up the saves. Here a query of
the table's own key starts from the items of its partition in the key
condition's range and moto does the rest as before (order, pages, filter,
projection): the same answer, for the cost of one partition.

The server answers GET /strata/motoserver with REVISION, so that the DynamoDB
tests can tell an emulator that an older copy of this file started, still
running, from this one (see awstest.DynamoDBEnv).

Usage: python3 motoserver.py HOST PORT
"""

import copy
import json
import os
import sys
import time

from moto.dynamodb.exceptions import (
    DynamodbException,
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodb.comparisons import get_filter_expression
from moto.core.responses import ActionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

# REVISION changes whenever the emulator's behaviour that tests rely on
# changes; awstest.go's motoRevision must say the same.
REVISION = "4"
REVISION_PATH = "/strata/motoserver"

_OPS = {"ConditionCheck", "Put", "Delete", "Update"}


def _key(backend, op_type, op):
    """The key an item of a transaction names."""
    if op_type == "Put":
        attrs = op["Item"]
        table = backend.get_table(op["TableName"])
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def _check(backend, transact_items):
    """Checks every item's condition before anything is written.

    Returns the items' (op_type, op, key) and one reason per item, as
    TransactionCanceledException takes them; raises what moto raises for
    a transaction that is refused outright.
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen = set()
    checked, reasons = [], []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        old = None
        op_type, op, key = None, None, None
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in _OPS:
                raise ValueError("Unsupported transaction operation")
            key = _key(backend, op_type, op)
            name = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if name in seen:
                raise MultipleTransactionsException()
            seen.add(name)
            current = backend.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                expr = get_filter_expression(
                    condition,
                    op.get("ExpressionAttributeNames"),
                    op.get("ExpressionAttributeValues"),
                )
                if not expr.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old)
            reasons.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as e:
            reasons.append(("ConditionalCheckFailed", str(e.message), old))
        except Exception as e:  # noqa: BLE001 moto reports any other failure as the item's reason
            reasons.append((type(e).__name__, str(e), old))
        checked.append((op_type, op, key))
    return checked, reasons


def _write(backend, op_type, op, key):
    """Applies one checked item of a transaction."""
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key, expression_attribute_names=names,
                            expression_attribute_values=values)
    elif op_type == "Update":
        backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)


class _Undo:
    """The items a transaction replaced, to put them back if a later write
    of the same transaction is refused."""

    def __init__(self):
        self.saved = []

    def keep(self, backend, table_name, key):
        table = backend.get_table(table_name)
        hash_key, range_key = backend.get_keys_value(table, key)
        had_hash = hash_key in table.items
        old = copy.deepcopy(table.get_item(hash_key, range_key))
        stream = len(table.stream_shard.items) if table.stream_shard is not None else None
        self.saved.append((table, hash_key, range_key, had_hash, old, stream))

    def restore(self):
        for table, hash_key, range_key, had_hash, old, stream in reversed(self.saved):
            if range_key is not None:
                if old is not None:
                    table.items[hash_key][range_key] = old
                else:
                    table.items.get(hash_key, {}).pop(range_key, None)
                    if not had_hash and not table.items.get(hash_key, True):
                        del table.items[hash_key]
            elif old is not None:
                table.items[hash_key] = old
            else:
                table.items.pop(hash_key, None)
            if stream is not None:
                del table.stream_shard.items[stream:]


def transact_write_items(self, transact_items):
    """DynamoDBBackend.transact_write_items, checking every condition first
    and undoing only the items it wrote (see the module's docstring)."""
    checked, reasons = _check(self, transact_items)
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    undo = _Undo()
    failed = False
    try:
        for i, (op_type, op, key) in enumerate(checked):
            if op_type == "ConditionCheck":
                continue
            undo.keep(self, op["TableName"], key)
            try:
                _write(self, op_type, op, key)
            except (MultipleTransactionsException, MockValidationException):
                raise
            except Exception as e:  # noqa: BLE001 as moto does, reported as the item's reason
                reasons[i] = (type(e).__name__, str(getattr(e, "message", e)), None)
                failed = True
    except BaseException:
        undo.restore()
        raise
    if failed:
        undo.restore()
        raise TransactionCanceledException(reasons)


_table_query = Table.query
_table_all_items = Table.all_items


def query(self, hash_key, range_comparison, range_objs, *args, **kwargs):
    """Table.query, starting from the items of one partition in the key
    condition's range when the query is of the table's own key (see the
    module's docstring)."""
    index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
    if index_name or hash_key is None or not self.range_key_attr:
        return _table_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    part = self.items.get(hash_key, {})
    self._strata_candidates = [
        item for item in part.values()
        if not range_comparison or item.range_key.compare(range_comparison, range_objs)
    ]
    try:
        return _table_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    finally:
        del self._strata_candidates


def all_items(self):
    """Table.all_items, or the candidates of the query being answered."""
    candidates = getattr(self, "_strata_candidates", None)
    if candidates is not None:
        return list(candidates)
    return _table_all_items(self)


_handler_transact = DynamoHandler.transact_write_items
_TOKEN_SECONDS = 600
_tokens = {}  # ClientRequestToken: (when it succeeded, its items as JSON)


class IdempotentParameterMismatch(DynamodbException):
    """A ClientRequestToken used again with other items."""

    def __init__(self):
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            message="The request uses the same client token as a previous, but non-identical request.",
        )


def handler_transact_write_items(self):
    """DynamoHandler.transact_write_items, applying a transaction once per
    ClientRequestToken (see the module's docstring)."""
    token = self.body.get("ClientRequestToken")
    if not token:
        return _handler_transact(self)
    now = time.monotonic()
    for old in [t for t, (when, _) in _tokens.items() if now - when > _TOKEN_SECONDS]:
        del _tokens[old]
    items = json.dumps(self.body.get("TransactItems"), sort_keys=True, default=repr)
    if token in _tokens:
        if _tokens[token][1] != items:
            raise IdempotentParameterMismatch()
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _handler_transact(self)
    _tokens[token] = (now, items)
    return result


def with_revision(app):
    """Wraps the emulator so that it tells its REVISION."""

    def serve(environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == REVISION_PATH:
            body = REVISION.encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return serve


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query
    DynamoHandler.transact_write_items = handler_transact_write_items
    Table.all_items = all_items
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, with_revision(app), threaded=False)


if __name__ == "__main__":
    main()
