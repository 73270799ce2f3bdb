package sink

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// ErrPermanent marks an error that retrying cannot fix: the input itself is
// bad. The pipeline turns the records concerned into dead letters with the
// error as reason and goes on; every other error (server down, timeouts,
// too many parts, a schema not migrated yet) is retryable: the raw message is
// Nak'ed with a delay and redelivered, and nothing is lost.
var ErrPermanent = errors.New("permanent")

// Permanent wraps err as permanent.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// ClickHouse exception codes the sink tells apart.
const (
	codeIllegalColumn = 44 // also "column already exists" on ALTER ADD
)

// permanentCodes are server exceptions caused by the rows sent, not by the
// server's state: the same rows fail again on every retry.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	26:  "CANNOT_PARSE_QUOTED_STRING",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
}

// IsPermanent is the one place errors are classified. It is true for errors
// marked with Permanent, for ClickHouse exceptions caused by the data (see
// permanentCodes) and for values the driver cannot convert to a column's
// type. Everything else, including network errors, timeouts, cancellation,
// unknown tables or columns (a migration is missing: fix and the retry
// succeeds), authentication errors, memory limits and TOO_MANY_PARTS (252,
// backpressure), is retryable.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrPermanent) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := permanentCodes[ex.Code]
		return ok
	}
	var conv *column.ColumnConverterError
	if errors.As(err, &conv) {
		return true
	}
	var unsupported *column.UnsupportedColumnTypeError
	return errors.As(err, &unsupported)
}
