package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/watchfloor/watchfloor/schemas"
)

// skipStored drops the rows whose ids are already in their table. It runs
// only for redelivered input, so its cost (one primary-key-bounded query per
// table and agency) is paid after a crash or an ack timeout, not per batch.
func (s *Sink) skipStored(ctx context.Context, evs []schemas.Event, fs []schemas.Finding, dls []schemas.DeadLetter) ([]schemas.Event, []schemas.Finding, []schemas.DeadLetter, error) {
	var err error
	if len(evs) > 0 {
		evs, err = filterStored(ctx, s, "events", "event_id", "time", evs,
			func(e *schemas.Event) (string, time.Time, schemas.ID) { return e.Agency, e.Time, e.ID })
		if err != nil {
			return nil, nil, nil, err
		}
	}
	if len(fs) > 0 {
		fs, err = filterStored(ctx, s, "detections", "detection_id", "time", fs,
			func(f *schemas.Finding) (string, time.Time, schemas.ID) { return f.Agency, f.Time, f.ID })
		if err != nil {
			return nil, nil, nil, err
		}
	}
	if len(dls) > 0 {
		dls, err = filterStored(ctx, s, "dead_letters", "dead_letter_id", "received", dls,
			func(d *schemas.DeadLetter) (string, time.Time, schemas.ID) { return d.Agency, d.Received, d.ID })
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return evs, fs, dls, nil
}

func filterStored[T any](ctx context.Context, s *Sink, table, idCol, timeCol string, rows []T, key func(*T) (string, time.Time, schemas.ID)) ([]T, error) {
	type span struct {
		min, max time.Time
		ids      []string
	}
	byAgency := map[string]*span{}
	for i := range rows {
		agency, t, id := key(&rows[i])
		sp := byAgency[agency]
		if sp == nil {
			sp = &span{min: t, max: t}
			byAgency[agency] = sp
		}
		if t.Before(sp.min) {
			sp.min = t
		}
		if t.After(sp.max) {
			sp.max = t
		}
		sp.ids = append(sp.ids, uuid.UUID(id).String())
	}
	stored := map[schemas.ID]struct{}{}
	// The ids are bound into the query text: chunks keep it under the
	// server's max_query_size (256 KiB by default, about 40 bytes per id).
	const idsPerQuery = 4000
	for agency, sp := range byAgency {
		for len(sp.ids) > 0 {
			chunk := sp.ids[:min(idsPerQuery, len(sp.ids))]
			sp.ids = sp.ids[len(chunk):]
			q := fmt.Sprintf("SELECT %s FROM %s.%s WHERE agency = ? AND %s >= toDateTime(?) AND %s < toDateTime(?) AND has(?, toString(%s))",
				idCol, s.cfg.Database, table, timeCol, timeCol, idCol)
			res, err := s.conn.Query(ctx, q, agency, sp.min.Unix(), sp.max.Unix()+1, chunk)
			if err != nil {
				return nil, fmt.Errorf("look up stored %s of agency %s: %w", table, agency, err)
			}
			for res.Next() {
				var id uuid.UUID
				if err := res.Scan(&id); err != nil {
					res.Close()
					return nil, fmt.Errorf("scan stored %s id: %w", table, err)
				}
				stored[schemas.ID(id)] = struct{}{}
			}
			err = res.Err()
			res.Close()
			if err != nil {
				return nil, fmt.Errorf("look up stored %s of agency %s: %w", table, agency, err)
			}
		}
	}
	if len(stored) == 0 {
		return rows, nil
	}
	out := rows[:0:0]
	for i := range rows {
		if _, ok := stored[func() schemas.ID { _, _, id := key(&rows[i]); return id }()]; !ok {
			out = append(out, rows[i])
		}
	}
	s.log.Info("skipped rows already stored by an earlier delivery", "table", table, "skipped", len(rows)-len(out))
	return out, nil
}
