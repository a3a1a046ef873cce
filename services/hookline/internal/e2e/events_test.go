package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Every finished upload is announced once on hookline.events.<tenant>.upload.completed,
// with its final status and counts.
func TestCompletionEvents(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	ok := apitest.NewReceiver(t, nil)
	dead := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	e.client.PutTemplate(keyA, "EV_OK", map[string]any{"url": ok.HookURL(), "chunkSize": 2})
	e.client.PutTemplate(keyA, "EV_DEAD", map[string]any{"url": dead.HookURL()})
	good := e.client.ImportJSON(keyA, map[string]any{"template": "EV_OK", "records": apitest.Records(5)})
	bad := e.client.ImportJSON(keyA, map[string]any{"template": "EV_DEAD", "records": apitest.Records(1)})
	e.client.WaitFinished(keyA, good.UploadID, 20*time.Second)
	e.client.WaitFinished(keyA, bad.UploadID, 20*time.Second)

	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(context.Background(), "HOOKLINE_EVENTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"hookline.events.acme.upload.completed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*hooklinev1.UploadCompleted{}
	count := 0
	apitest.Eventually(t, 10*time.Second, "two completion events", func() bool {
		batch, err := cons.FetchNoWait(10)
		if err != nil {
			return false
		}
		for msg := range batch.Messages() {
			var ev hooklinev1.UploadCompleted
			if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			got[ev.GetUploadId()] = &ev
			count++
		}
		return count >= 2
	})
	if g := got[good.UploadID]; g == nil || g.GetStatus() != "completed" || g.GetTotalPages() != 3 || g.GetDeliveredPages() != 3 || g.GetTemplate() != "EV_OK" || g.GetTenant() != "acme" || g.GetCompletedAtUnixMs() == 0 {
		t.Fatalf("event of the completed upload = %v", g)
	}
	if b := got[bad.UploadID]; b == nil || b.GetStatus() != "failed" || b.GetFailedPages() != 1 {
		t.Fatalf("event of the failed upload = %v", b)
	}
	if count != 2 {
		t.Fatalf("%d events, want one per upload", count)
	}
}
