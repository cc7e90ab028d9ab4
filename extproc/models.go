package extproc

import (
	"encoding/json"
	"strings"
)

// model is one entry of OpenAI's model list.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelObject is the /v1/models entry for an alias. Aliases are the gateway's own
// product, so owned_by names the gateway rather than whichever provider serves it today.
func (s *Server) modelObject(a *alias) model {
	return model{ID: a.name, Object: "model", Created: s.created, OwnedBy: "tollgate"}
}

// modelList is the /v1/models body for p: the aliases it may use, in config.yaml order.
func (s *Server) modelList(p *Principal) []byte {
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, a := range s.aliasOrder {
		if allowed(p, a) {
			list.Data = append(list.Data, s.modelObject(a))
		}
	}
	b, _ := json.Marshal(list) // cannot fail: strings and numbers only
	return b
}

// allowed reports whether p may use alias a: every alias when p lists none, else the
// aliases it names directly or through one of their model_info.access_groups.
func allowed(p *Principal, a *alias) bool {
	if len(p.Models) == 0 {
		return true
	}
	for _, m := range p.Models {
		if m == a.name {
			return true
		}
		for _, g := range a.groups {
			if m == g {
				return true
			}
		}
	}
	return false
}

// usable lists the aliases p may use, for error messages.
func (s *Server) usable(p *Principal) string {
	if len(p.Models) == 0 {
		return s.aliasNames
	}
	var names []string
	for _, a := range s.aliasOrder {
		if allowed(p, a) {
			names = append(names, a.name)
		}
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
