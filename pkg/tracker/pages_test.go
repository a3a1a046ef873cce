package tracker

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestListPagesWalkEveryUploadOnce(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	base := time.UnixMilli(1_700_000_000_000)
	var want []string
	add := func(i int, at time.Time) {
		id := fmt.Sprintf("U%03d", i)
		if _, err := tr.Create(ctx, &Upload{ID: id, Tenant: "acme", Template: "T", TotalPages: 1, TotalRecords: 1,
			CreatedAt: at, Destination: Destination{MaxInFlight: 1}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	for i := range 30 {
		add(i, base.Add(time.Duration(i/4)*time.Millisecond)) // four uploads per millisecond
	}
	seen := map[string]int{}
	var pos *UploadPos
	var order []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the walk does not end")
		}
		page, err := tr.ListPage(ctx, "acme", Filter{Limit: 3, After: pos})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Uploads {
			seen[u.ID]++
			order = append(order, u.ID)
		}
		if pages == 2 {
			add(100, base.Add(time.Hour)) // a newer upload while walking: before the cursor
		}
		if page.Next == nil {
			break
		}
		pos = page.Next
	}
	for _, id := range want[:30] {
		if seen[id] != 1 {
			t.Errorf("upload %s listed %d times", id, seen[id])
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] >= order[i-1] {
			t.Fatalf("not newest first: %v", order)
		}
	}
}

func TestAttemptPagesSurviveTheCap(t *testing.T) {
	tr := newTracker(t, WithAttemptLogCap(5))
	ctx := context.Background()
	create(t, tr, "A1", 40, 40)
	next := 1
	log := func(n int) {
		for range n {
			begin(t, tr, "A1", next, "t", time.Now())
			finish(t, tr, Call{Upload: "A1", Page: next, Token: "t"}, Finish{Outcome: Delivered, Attempt: &Attempt{Page: next, Attempt: 1, Outcome: "delivered"}})
			next++
		}
	}
	log(12) // the log keeps 8..12
	var got []int
	var from int64
	for calls := 0; ; calls++ {
		if calls > 50 {
			t.Fatal("the walk does not end")
		}
		page, err := tr.AttemptsPage(ctx, "A1", from, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Attempts {
			got = append(got, a.Page)
		}
		if calls == 0 {
			log(3) // appended while walking; the log drops 8..10
		}
		if page.Last {
			break
		}
		from = page.Next
	}
	want := []int{8, 9, 11, 12, 13, 14, 15}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("attempts walked = %v, want %v (each once, in order)", got, want)
	}
}

func TestFailurePagesByPageNumber(t *testing.T) {
	for _, n := range []int{7, 1200} { // a log read whole, and one read page number by page number
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tr := newTracker(t)
			ctx := context.Background()
			id := fmt.Sprintf("F%d", n)
			pages := 2*n + 1
			create(t, tr, id, pages, pages)
			for p := 1; p <= pages; p++ {
				begin(t, tr, id, p, "t", time.Now())
				f := Finish{Outcome: Delivered}
				if p%2 == 0 {
					f = Finish{Outcome: Failed, Failure: &Failure{Page: p, Attempts: 1, Error: "status 500"}}
				}
				finish(t, tr, Call{Upload: id, Page: p, Token: "t"}, f)
			}
			var got []int
			var after int64
			for calls := 0; ; calls++ {
				if calls > 1000 {
					t.Fatal("the walk does not end")
				}
				page, err := tr.FailuresPage(ctx, id, after, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Failures) > 100 {
					t.Fatalf("page of %d failures, limit 100", len(page.Failures))
				}
				for _, f := range page.Failures {
					got = append(got, f.Page)
				}
				if page.Last {
					break
				}
				after = page.Next
			}
			if len(got) != n {
				t.Fatalf("walked %d failures, want %d", len(got), n)
			}
			for i, p := range got {
				if p != 2*(i+1) {
					t.Fatalf("failure %d is page %d, want %d", i, p, 2*(i+1))
				}
			}
		})
	}
}
