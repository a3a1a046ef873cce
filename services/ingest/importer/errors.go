package importer

import (
	"errors"
	"fmt"
)

// ErrUnavailable marks a failure of the queue or the store: nothing was
// accepted.
var ErrUnavailable = errors.New("unavailable")

// ErrNoRecords refuses an import without a record.
var ErrNoRecords = errors.New("the import has no records")

// ErrStalled refuses an import that was so slow that the janitor took it for
// abandoned and purged its pages.
var ErrStalled = fmt.Errorf("%w: the import stalled and its pages were cleaned up", ErrUnavailable)

// TooManyRecordsError refuses an import over the limit of records per import.
type TooManyRecordsError struct{ Limit int }

func (e *TooManyRecordsError) Error() string {
	return fmt.Sprintf("the import has more than %d records, the limit per import", e.Limit)
}
