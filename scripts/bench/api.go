package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"time"
)

// api is a client of ingest's /v1 API.
type api struct {
	base string
	hc   *http.Client
	key  string // the tenant's API key
}

func newAPI(addr string) *api {
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	return &api{base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Minute}, key: apiKey}
}

// as is the same client acting for the tenant of key.
func (a *api) as(key string) *api {
	b := *a
	b.key = key
	return &b
}

type accepted struct {
	UploadID     string `json:"uploadId"`
	TotalRecords int    `json:"totalRecords"`
	TotalPages   int    `json:"totalPages"`
	Status       string `json:"status"`
}

type uploadView struct {
	UploadID       string `json:"uploadId"`
	Status         string `json:"status"`
	TotalPages     int    `json:"totalPages"`
	DeliveredPages int    `json:"deliveredPages"`
	FailedPages    int    `json:"failedPages"`
}

func (a *api) do(ctx context.Context, method, path, ctype string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if s, ok := body.(sized); ok {
		req.ContentLength = s.n
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// putTemplate creates or replaces a webhook template.
func (a *api) putTemplate(ctx context.Context, code, url string, chunkSize, maxInFlight int) error {
	return a.putTemplateFormat(ctx, code, url, chunkSize, maxInFlight, nil)
}

// putTemplateFormat stores a template with a recordFormat (nil: none).
func (a *api) putTemplateFormat(ctx context.Context, code, url string, chunkSize, maxInFlight int, format any) error {
	wh := map[string]any{
		"url": url, "authHeaderName": "X-API-KEY", "chunkSize": chunkSize,
		"retryCount": 3, "retryInterval": 100, "timeout": 30000, "maxInFlight": maxInFlight,
	}
	if format != nil {
		wh["recordFormat"] = format
	}
	body, _ := json.Marshal(map[string]any{"name": "bench " + code, "destination": map[string]any{"webhook": wh}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, a.base+"/v1/templates/"+code, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT template %s: status %d: %s", code, resp.StatusCode, b)
	}
	return nil
}

// importJSON posts a prebuilt JSON import body.
func (a *api) importJSON(ctx context.Context, body []byte) (accepted, error) {
	var acc accepted
	err := a.do(ctx, http.MethodPost, "/v1/imports", "application/json", bytes.NewReader(body), http.StatusAccepted, &acc)
	return acc, err
}

// importFile streams a CSV or XLSX file as a multipart import, the way a browser or
// curl -F uploads it: with its Content-Length (the file is read as it is
// sent, never held whole).
func (a *api) importFile(ctx context.Context, template, authValue, path string) (accepted, error) {
	f, err := os.Open(path) // #nosec G304 -- the file the bench generated
	if err != nil {
		return accepted{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return accepted{}, err
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	if err := mw.WriteField("template", template); err != nil {
		return accepted{}, err
	}
	if err := mw.WriteField("authHeaderValue", authValue); err != nil {
		return accepted{}, err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(path)))
	if filepath.Ext(path) == ".xlsx" {
		h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	} else {
		h.Set("Content-Type", "text/csv")
	}
	if _, err := mw.CreatePart(h); err != nil {
		return accepted{}, err
	}
	head := form.Len()
	if err := mw.Close(); err != nil { // the closing boundary, sent after the file
		return accepted{}, err
	}
	b := form.Bytes()
	body := sized{Reader: io.MultiReader(bytes.NewReader(b[:head]), f, bytes.NewReader(b[head:])), n: int64(len(b)) + fi.Size()}
	var acc accepted
	err = a.do(ctx, http.MethodPost, "/v1/imports", mw.FormDataContentType(), body, http.StatusAccepted, &acc)
	return acc, err
}

// sized is a request body of known length.
type sized struct {
	io.Reader
	n int64
}

func (a *api) upload(ctx context.Context, id string) (uploadView, error) {
	var u uploadView
	err := a.do(ctx, http.MethodGet, "/v1/uploads/"+id, "", nil, http.StatusOK, &u)
	return u, err
}

// verify checks, through the API, that every upload completed with every
// page delivered. It polls for a short while: the status is written by the
// worker's finish script right after the last POST.
func (a *api) verify(ctx context.Context, ids []string) error {
	for _, id := range ids {
		deadline := time.Now().Add(30 * time.Second)
		for {
			u, err := a.upload(ctx, id)
			if err != nil {
				return err
			}
			if u.Status == "completed" && u.DeliveredPages == u.TotalPages {
				break
			}
			if u.Status == "failed" || time.Now().After(deadline) {
				return fmt.Errorf("upload %s: status %s, %d/%d pages delivered, %d failed",
					id, u.Status, u.DeliveredPages, u.TotalPages, u.FailedPages)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
