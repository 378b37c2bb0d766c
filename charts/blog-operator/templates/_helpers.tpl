{{- define "blog-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "blog-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "blog-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "blog-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "blog-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's RBAC rules, cluster-wide or per watched namespace. */}}
{{- define "blog-operator.rules" -}}
- apiGroups: ["blogs.serverless.dev"]
  resources: ["blogdeployments"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["blogs.serverless.dev"]
  resources: ["blogdeployments/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["blogs.serverless.dev"]
  resources: ["blogdeployments/finalizers"]
  verbs: ["update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
