package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/watchfloor/watchfloor/schemas"
)

// JetStreamFindings publishes findings as OCSF Detection Finding JSON to
// soc.detections.<agency>.<level>, with the finding id as Nats-Msg-Id so a
// republish after a crash is dropped by the stream's duplicate window.
type JetStreamFindings struct {
	JS      jetstream.JetStream
	Timeout time.Duration
}

var _ FindingPublisher = (*JetStreamFindings)(nil)

// detectionFinding is the OCSF 2004 shape of a finding on the wire.
type detectionFinding struct {
	ClassUID    uint32         `json:"class_uid"`
	CategoryUID uint32         `json:"category_uid"`
	ActivityID  uint32         `json:"activity_id"`
	TypeUID     uint32         `json:"type_uid"`
	SeverityID  uint8          `json:"severity_id"`
	Time        int64          `json:"time"`
	Metadata    findingMeta    `json:"metadata"`
	FindingInfo findingInfo    `json:"finding_info"`
	Agency      string         `json:"agency"`
	Evidence    []findingEvent `json:"evidences"`
}

type findingMeta struct {
	Product   map[string]string `json:"product"`
	Version   string            `json:"version"`
	TenantUID string            `json:"tenant_uid"`
	UID       string            `json:"uid"`
}

type findingInfo struct {
	UID      string   `json:"uid"`
	Title    string   `json:"title"`
	Analytic analytic `json:"analytic"`
	Types    []string `json:"types,omitempty"`
	Attacks  []attack `json:"attacks,omitempty"`
}

// attack is an OCSF MITRE ATT&CK object: the technique a rule's
// attack.tNNNN tag names.
type attack struct {
	Technique struct {
		UID string `json:"uid"`
	} `json:"technique"`
}

type analytic struct {
	UID     string `json:"uid"`
	Name    string `json:"name"`
	TypeID  int    `json:"type_id"` // 1 Rule
	Version string `json:"version"`
}

type findingEvent struct {
	EventUID string `json:"event_uid"`
	ClassUID uint32 `json:"class_uid,omitempty"`
	// Data names the Sigma fields that matched (detect.Finding.Matched).
	Data map[string][]string `json:"data,omitempty"`
}

// FindingJSON renders f as OCSF Detection Finding JSON.
func FindingJSON(f *schemas.Finding) ([]byte, error) {
	d := detectionFinding{
		ClassUID:    schemas.ClassDetectionFinding,
		CategoryUID: 2,
		ActivityID:  1,
		TypeUID:     schemas.ClassDetectionFinding*100 + 1,
		SeverityID:  f.SeverityID,
		Time:        f.Time.UnixMilli(),
		Metadata: findingMeta{
			Product:   map[string]string{"name": "Watchfloor", "vendor_name": "Watchfloor"},
			Version:   schemas.SchemaVersion,
			TenantUID: f.Agency,
			UID:       f.ID.String(),
		},
		FindingInfo: findingInfo{
			UID:      f.ID.String(),
			Title:    f.RuleTitle,
			Analytic: analytic{UID: f.RuleID, Name: f.RuleTitle, TypeID: 1, Version: fmt.Sprint(f.RuleRevision)},
			Types:    f.Tags,
		},
		Agency:   f.Agency,
		Evidence: []findingEvent{{EventUID: f.EventID.String(), ClassUID: f.EventClass}},
	}
	if len(f.Matched) > 0 {
		d.Evidence[0].Data = map[string][]string{"matched_fields": f.Matched}
	}
	for _, id := range f.EventIDs { // a correlation: every event that made up the match
		if id != f.EventID {
			d.Evidence = append(d.Evidence, findingEvent{EventUID: id.String()})
		}
	}
	for _, t := range f.Techniques {
		var a attack
		a.Technique.UID = t
		d.FindingInfo.Attacks = append(d.FindingInfo.Attacks, a)
	}
	return json.Marshal(&d)
}

// Publish sends every finding and waits for all PubAcks.
func (p *JetStreamFindings) Publish(ctx context.Context, findings []schemas.Finding) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(findings))
	for i := range findings {
		f := &findings[i]
		data, err := FindingJSON(f)
		if err != nil {
			return fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
		msg := nats.NewMsg(DetectionSubject(f.Agency, f.RuleLevel))
		msg.Data = data
		msg.Header.Set(HeaderMsgID, f.ID.String())
		fut, err := p.JS.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish finding %s: %w", f.ID, err)
		}
		futures = append(futures, fut)
	}
	for _, fut := range futures {
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			return fmt.Errorf("publish finding to %s: %w", fut.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("publish findings: wait for acks: %w", ctx.Err())
		}
	}
	return nil
}
