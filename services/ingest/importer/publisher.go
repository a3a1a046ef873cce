package importer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// pagePublisher compresses, encodes and publishes an import's pages, in
// page order, on a goroutine of its own while the import's reader goes on
// parsing: the two halves of an import use two cores. Two page buffers go
// back and forth between them: the reader fills one while the other is
// published.
type pagePublisher struct {
	full   chan pageOut
	free   chan []byte
	done   chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc
	ctx    context.Context
	err    error // the goroutine's error, read after done is closed
	closed bool
}

// pageOut is one filled page: its records as a JSON array.
type pageOut struct {
	records     []byte
	page, count int
}

// startPublisher starts the publishing goroutine of upload id. The window w
// is its own until finish or stop has returned.
func (im *Importer) startPublisher(ctx context.Context, id string, limit int64, w *ackWindow) *pagePublisher {
	ctx, cancel := context.WithCancel(ctx)
	p := &pagePublisher{full: make(chan pageOut, 1), free: make(chan []byte, 2), done: make(chan struct{}), cancel: cancel, ctx: ctx}
	for range 2 {
		p.free <- make([]byte, 0, 64<<10)
	}
	go func() {
		defer close(p.done)
		enc := queue.PageEncoder{Compression: im.compression}
		for out := range p.full {
			err := ctx.Err() // stopped: publish nothing more
			if err == nil {
				err = im.publishPage(ctx, &enc, id, out, limit, w)
			}
			if err != nil {
				p.err = err
				return
			}
			p.free <- out.records[:0] // the encoded page holds a copy
		}
	}()
	return p
}

func (im *Importer) publishPage(ctx context.Context, enc *queue.PageEncoder, id string, out pageOut, limit int64, w *ackWindow) error {
	data, err := enc.Encode(&hooklinev1.Page{
		// #nosec G115 -- count ≤ chunkSize (10000); pages of one file stay far below 2^32
		UploadId: id, Page: uint32(out.page), RecordCount: uint32(out.count), Records: out.records,
	})
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return &records.PageSizeError{Page: out.page, Records: out.count, Size: len(data), Limit: limit}
	}
	fut, err := im.queue.PublishPageAsync(id, out.page, data)
	if err != nil {
		return fmt.Errorf("%w: publish page: %w", ErrUnavailable, err)
	}
	add(im.count.Pages, 1)
	return w.add(ctx, fut, len(data))
}

// send hands a filled page over and returns an empty buffer for the next;
// it answers the goroutine's error once publishing has failed.
func (p *pagePublisher) send(records []byte, page, count int) ([]byte, error) {
	select {
	case p.full <- pageOut{records: records, page: page, count: count}:
	case <-p.done:
		return nil, p.failed()
	}
	select {
	case b := <-p.free:
		return b, nil
	case <-p.done:
		return nil, p.failed()
	}
}

func (p *pagePublisher) failed() error {
	if p.err != nil {
		return p.err
	}
	return p.ctx.Err()
}

// finish waits until every page handed over is published (not yet
// acknowledged: the window holds their futures).
func (p *pagePublisher) finish() error {
	if !p.closed {
		p.closed = true
		close(p.full)
	}
	<-p.done
	return p.err
}

// stop ends the goroutine at once, a page still queued left unpublished; it
// may follow finish.
func (p *pagePublisher) stop() {
	p.cancel()
	if !p.closed {
		p.closed = true
		close(p.full)
	}
	<-p.done
}

// ackWindow bounds the pages published and not yet acknowledged.
type ackWindow struct {
	futs  []jetstream.PubAckFuture
	sizes []int
	bytes int
}

const (
	windowPages = 256
	windowBytes = 8 << 20
)

func (w *ackWindow) add(ctx context.Context, f jetstream.PubAckFuture, size int) error {
	w.futs, w.sizes = append(w.futs, f), append(w.sizes, size)
	w.bytes += size
	if len(w.futs) >= windowPages || w.bytes >= windowBytes {
		return w.wait(ctx, len(w.futs)/2)
	}
	return nil
}

// settle waits until every outstanding page is stored or refused (each
// future ends within the publish timeout: Run sets one), so that a purge
// removes them all.
func (w *ackWindow) settle() {
	for _, f := range w.futs {
		select {
		case <-f.Ok():
		case <-f.Err():
		}
	}
}

// wait blocks until at most keep futures are outstanding.
func (w *ackWindow) wait(ctx context.Context, keep int) error {
	for len(w.futs) > keep {
		select {
		case <-w.futs[0].Ok():
		case err := <-w.futs[0].Err():
			w.pop() // settled: settle must not wait for it again
			return fmt.Errorf("%w: store page: %w", ErrUnavailable, err)
		case <-ctx.Done():
			return ctx.Err()
		}
		w.pop()
	}
	return nil
}

// pop drops the oldest future. Its slot is cleared: the future holds its
// whole encoded page, which must not stay reachable from the backing array.
func (w *ackWindow) pop() {
	w.bytes -= w.sizes[0]
	w.futs[0] = nil
	w.futs, w.sizes = w.futs[1:], w.sizes[1:]
}
