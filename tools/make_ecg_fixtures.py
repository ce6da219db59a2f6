#!/usr/bin/env python3
"""Writes the ECG format fixtures under tests/fixtures/ecg/ and their expected values.

The fixtures are written here from the formats' published layouts (GE CardioSoft CardiologyXML,
GE MUSE RestingECG, HL7 aECG, DICOM 12-lead ECG waveform via pydicom, EDF+), with the awkward parts
the readers must handle: median beats beside (and before) the rhythm data, per-lead amplitude units,
missing leads, non-ECG signals, several sampling rates. Expected values (in mV) are computed here,
independently of the TypeScript readers: from the integer samples and the scales written into each
file, and for DICOM from the samples pydicom decodes (`multiplex_array`, checked against its `waveform_array`).

Run with the system Python that has numpy and pydicom (Debian: python3-numpy, python3-pydicom):
    /usr/bin/python3 tools/make_ecg_fixtures.py
Where python3-biosig (Debian: python3-biosig) is installed, the EDF and HL7 aECG fixtures are also read
back with libbiosig and must agree with the expected values: a second, independent reader of the files.

The real pydicom test file waveform_ecg.dcm (fetched by scripts/fetch-test-files.sh, not committed)
gets its expected values written too, when present.
"""
import base64
import json
import os
import struct
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'ecg')
LEADS12 = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']


def synthetic_leads(names, n, fs, seed, amplitude_uv=1000.0):
    """Beat-like test signals in uV: Gaussian P/QRS/T waves at 72 bpm, a lead-specific gain, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    rr = 60 / 72
    phase = (t % rr) / rr
    beat = (0.12 * np.exp(-((phase - 0.15) / 0.03) ** 2)
            + 1.0 * np.exp(-((phase - 0.30) / 0.012) ** 2)
            - 0.2 * np.exp(-((phase - 0.33) / 0.01) ** 2)
            + 0.3 * np.exp(-((phase - 0.60) / 0.06) ** 2))
    out = {}
    for k, name in enumerate(names):
        gain = (0.4 + 0.15 * k) * (-1 if name == 'aVR' else 1)
        out[name] = amplitude_uv * gain * beat + rng.normal(0, 8, n) + 30 * np.sin(2 * np.pi * 0.3 * t + k)
    return out


def expected_entry(name, mv):
    """What the tests compare: length, sum, sum of squares and a few samples (every 97th)."""
    mv = np.asarray(mv, dtype=np.float64)
    idx = list(range(0, len(mv), 97))
    return {'name': name, 'length': int(len(mv)), 'sum': float(mv.sum()), 'sumSq': float((mv ** 2).sum()),
            'sampleIndex': idx, 'samples': [float(mv[i]) for i in idx]}


def dump_expected(path, expected):
    """One line per lead keeps the files small and their diffs readable."""
    leads = ',\n'.join(' ' + json.dumps(lead, separators=(',', ':')) for lead in expected['leads'])
    head = json.dumps({k: v for k, v in expected.items() if k != 'leads'})[:-1]
    with open(path, 'w') as f:
        f.write(head + ', "leads": [\n' + leads + '\n]}\n')


def cross_check_with_biosig(name, expected, column_units):
    """Reads a fixture back with libbiosig (independent EDF and HL7 aECG readers) and compares in mV.
    column_units: the unit of each column biosig returns, in file order (annotation channels are left
    out by biosig). Only biosig.data is used: its header text is not reliably decodable."""
    try:
        import biosig
    except ImportError:
        print(f'python3-biosig not installed: {name} not cross-checked', file=sys.stderr)
        return
    data = biosig.data(os.path.join(OUT, name))  # (samples, channels) in physical units
    to_mv = {'uV': 1e-3, 'mV': 1.0}
    names = [n for n, _ in column_units]
    for lead in expected['leads']:
        col = names.index(lead['name'])
        mv = data[:lead['length'], col] * to_mv[column_units[col][1]]
        assert np.allclose(mv[lead['sampleIndex']], lead['samples'], atol=1e-9), f'{name} {lead["name"]}: biosig disagrees'
        assert abs(mv.sum() - lead['sum']) < 1e-6 * max(1, abs(lead['sum'])), f'{name} {lead["name"]}: biosig sum disagrees'
    print(f'{name}: libbiosig agrees on {len(expected["leads"])} leads', file=sys.stderr)


def write(name, data, expected=None):
    path = os.path.join(OUT, name)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode('iso-8859-1' if 'ISO-8859-1' in data[:60] else 'utf-8'))
    if expected is not None:
        dump_expected(path + '.expected.json', expected)


def cardiosoft():
    fs, n, res = 500, 1250, 5  # 2.5 s, 5 uV per LSB as UK Biobank
    digital = {k: np.round(v / res).astype(int) for k, v in synthetic_leads(LEADS12, n, fs, 1).items()}
    median = {k: np.round(v[:600] / 2.5).astype(int) for k, v in synthetic_leads(LEADS12, 600, fs, 2).items()}

    def waveform(values):
        # CardioSoft breaks the comma list over lines with tabs; the reader must not care.
        parts = [','.join(str(x) for x in values[i:i + 40]) for i in range(0, len(values), 40)]
        return ',\n\t\t'.join(parts)

    med = '\n'.join(f'      <WaveformData lead="{k}">{waveform(v)}</WaveformData>' for k, v in median.items())
    strip = '\n'.join(f'    <WaveformData lead="{k}">{waveform(v)}</WaveformData>' for k, v in digital.items())
    xml = f'''<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE CardiologyXML SYSTEM "CardiologyXML.dtd">
<CardiologyXML>
  <ObservationType>RestECG</ObservationType>
  <PatientInfo><PID>0000000</PID><Name>Fixture, Hand-written</Name><Age units="years">60</Age></PatientInfo>
  <RestingECGMeasurements>
    <VentricularRate units="BPM">72</VentricularRate>
    <MedianSamples>
      <NumberOfLeads>12</NumberOfLeads>
      <SampleRate units="Hz">500</SampleRate>
      <ChannelSampleCountTotal>600</ChannelSampleCountTotal>
      <Resolution units="uVperLsb">2.5</Resolution>
      <FirstValid units="ms">0</FirstValid>
{med}
    </MedianSamples>
  </RestingECGMeasurements>
  <StripData>
    <NumberOfLeads>12</NumberOfLeads>
    <SampleRate units="Hz">{fs}</SampleRate>
    <ChannelSampleCountTotal>{n}</ChannelSampleCountTotal>
    <Resolution units="uVperLsb">{res}</Resolution>
{strip}
    <ArrhythmiaResults><Time units="sec">0</Time><BeatClass>Normal</BeatClass></ArrhythmiaResults>
  </StripData>
  <Interpretation><Diagnosis><DiagnosisText>Fixture, not a real ECG</DiagnosisText></Diagnosis></Interpretation>
</CardiologyXML>
'''
    write('cardiosoft-rest.xml', xml, {'fs': fs, 'leads': [expected_entry(k, v * res / 1000) for k, v in digital.items()]})

    # Exercise-style file: no StripData; FullDisclosure in one-second blocks (fs samples of each lead in
    # LeadOrder, one block per line, as UK Biobank files have it); leads named I, 2, 3 as in exercise files.
    leads3 = ['I', 'II', 'III']
    fd = {k: np.round(v / res).astype(int) for k, v in synthetic_leads(leads3, 1500, fs, 3).items()}
    blocks = [fd[k][sec * fs:(sec + 1) * fs] for sec in range(1500 // fs) for k in leads3]
    lines = [','.join(str(x) for x in block) for block in blocks]
    xml = f'''<?xml version="1.0" encoding="ISO-8859-1"?>
<CardiologyXML>
  <ObservationType>ExerciseECG</ObservationType>
  <FullDisclosure>
    <StartTime><Minute>0</Minute><Second>0</Second></StartTime>
    <NumberOfChannels>3</NumberOfChannels>
    <SampleRate units="Hz">{fs}</SampleRate>
    <Resolution units="uVperLsb">{res}</Resolution>
    <LeadOrder>I,2,3</LeadOrder>
    <FullDisclosureData>{(','+chr(10)).join(lines)},</FullDisclosureData>
  </FullDisclosure>
</CardiologyXML>
'''
    write('cardiosoft-fulldisclosure.xml', xml, {'fs': fs, 'leads': [expected_entry(k, fd[k] * res / 1000) for k in leads3]})


def muse():
    # Rhythm at SampleBase 50 x 10^1 = 500 Hz, 8 stored leads; V3 stored in MILLIVOLTS (per-lead units).
    fs, n = 500, 1250
    stored = ['I', 'II', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']
    raw = synthetic_leads(stored, n, fs, 4)
    units = {k: ('MILLIVOLTS', 0.00488) if k == 'V3' else ('MICROVOLTS', 4.88) for k in stored}
    digital = {k: np.clip(np.round(v / 4.88), -32768, 32767).astype('<i2') for k, v in raw.items()}

    def b64(arr):
        text = base64.b64encode(arr.tobytes()).decode('ascii')
        return '\n'.join(text[i:i + 76] for i in range(0, len(text), 76))  # MIME-style line breaks

    def lead_data(k, arr, unit, per_bit):
        return f'''    <LeadData>
      <LeadByteCountTotal>{arr.size * 2}</LeadByteCountTotal>
      <LeadTimeOffset>0</LeadTimeOffset>
      <LeadSampleCountTotal>{arr.size}</LeadSampleCountTotal>
      <LeadAmplitudeUnitsPerBit>{per_bit}</LeadAmplitudeUnitsPerBit>
      <LeadAmplitudeUnits>{unit}</LeadAmplitudeUnits>
      <LeadHighLimit>32767</LeadHighLimit>
      <LeadLowLimit>-32768</LeadLowLimit>
      <LeadID>{k}</LeadID>
      <LeadOffsetFirstSample>0</LeadOffsetFirstSample>
      <FirstSampleBaseline>0</FirstSampleBaseline>
      <LeadSampleSize>2</LeadSampleSize>
      <LeadOff>FALSE</LeadOff>
      <BaselineSway>FALSE</BaselineSway>
      <LeadDataCRC32>{zlib.crc32(arr.tobytes())}</LeadDataCRC32>
      <WaveFormData>{b64(arr)}</WaveFormData>
    </LeadData>'''

    median = {k: np.round(v[:600] / 4.88).astype('<i2') for k, v in synthetic_leads(stored, 600, fs, 5).items()}
    median_xml = '\n'.join(lead_data(k, v, 'MICROVOLTS', 4.88) for k, v in median.items())
    rhythm_xml = '\n'.join(lead_data(k, digital[k], *units[k]) for k in stored)
    xml = f'''<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE RestingECG SYSTEM "restecg.dtd">
<RestingECG>
  <MuseInfo><MuseVersion>9.0.9.18167</MuseVersion></MuseInfo>
  <PatientDemographics><PatientID>0000000</PatientID><PatientLastName>FIXTURE</PatientLastName></PatientDemographics>
  <TestDemographics><DataType>RESTING</DataType><Site>1</Site><AcquisitionDevice>MAC55</AcquisitionDevice></TestDemographics>
  <RestingECGMeasurements><VentricularRate>72</VentricularRate><AtrialRate>72</AtrialRate></RestingECGMeasurements>
  <Waveform>
    <WaveformType>Median</WaveformType>
    <WaveformStartTime>0</WaveformStartTime>
    <NumberofLeads>8</NumberofLeads>
    <SampleType>CONTINUOUS_SAMPLES</SampleType>
    <SampleBase>500</SampleBase>
    <SampleExponent>0</SampleExponent>
    <HighPassFilter>16</HighPassFilter>
    <LowPassFilter>150</LowPassFilter>
    <ACFilter>60</ACFilter>
{median_xml}
  </Waveform>
  <Waveform>
    <WaveformType>Rhythm</WaveformType>
    <WaveformStartTime>0</WaveformStartTime>
    <NumberofLeads>8</NumberofLeads>
    <SampleType>CONTINUOUS_SAMPLES</SampleType>
    <SampleBase>50</SampleBase>
    <SampleExponent>1</SampleExponent>
    <HighPassFilter>16</HighPassFilter>
    <LowPassFilter>150</LowPassFilter>
    <ACFilter>60</ACFilter>
{rhythm_xml}
  </Waveform>
</RestingECG>
'''
    scale_mv = {k: (units[k][1] * (1 if units[k][0] == 'MILLIVOLTS' else 1e-3)) for k in stored}
    write('muse-rest.xml', xml, {'fs': fs, 'leads': [expected_entry(k, digital[k].astype(float) * scale_mv[k]) for k in stored]})


def hl7():
    # RHYTHM series, TIME_ABSOLUTE at 0.002 s; aVR and aVL missing; V leads in mV with a non-zero origin;
    # a REPRESENTATIVE_BEAT derived series (median) beside it that must not be read.
    fs, n = 500, 1250
    present = [k for k in LEADS12 if k not in ('aVR', 'aVL')]
    raw = synthetic_leads(present, n, fs, 6)
    spec = {}
    for k in present:
        if k.startswith('V'):
            spec[k] = {'origin': (0.0125, 'mV'), 'scale': (0.005, 'mV')}
        else:
            spec[k] = {'origin': (0, 'uV'), 'scale': (2.5, 'uV')}
    to_mv = {'uV': 1e-3, 'mV': 1.0}
    digital = {}
    for k in present:
        o, ou = spec[k]['origin']
        s, su = spec[k]['scale']
        digital[k] = np.round((raw[k] * 1e-3 - o * to_mv[ou]) / (s * to_mv[su])).astype(int)

    def seq(code, value):
        return f'''            <component>
              <sequence>
                <code code="{code}" codeSystem="2.16.840.1.113883.6.24" codeSystemName="MDC"/>
{value}
              </sequence>
            </component>'''

    def lead_value(k, d):
        o, ou = spec[k]['origin']
        s, su = spec[k]['scale']
        return f'''                <value xsi:type="SLIST_PQ">
                  <origin value="{o}" unit="{ou}"/>
                  <scale value="{s}" unit="{su}"/>
                  <digits>{' '.join(str(x) for x in d)}</digits>
                </value>'''

    time_abs = '''            <component>
              <sequence>
                <code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
                <value xsi:type="GLIST_TS">
                  <head value="20200101120000.000"/>
                  <increment value="0.002" unit="s"/>
                </value>
              </sequence>
            </component>'''
    time_rel = time_abs.replace('TIME_ABSOLUTE', 'TIME_RELATIVE').replace('GLIST_TS', 'GLIST_PQ').replace(
        '<head value="20200101120000.000"/>', '<head value="0" unit="s"/>')
    rhythm_leads = '\n'.join(seq('MDC_ECG_LEAD_' + k.upper(), lead_value(k, digital[k])) for k in present)
    median = {k: np.round(v[:600] / 2.5).astype(int) for k, v in synthetic_leads(LEADS12, 600, fs, 7).items()}
    median_leads = '\n'.join(seq('MDC_ECG_LEAD_' + k.upper(), f'''                <value xsi:type="SLIST_PQ">
                  <origin value="0" unit="uV"/>
                  <scale value="2.5" unit="uV"/>
                  <digits>{' '.join(str(x) for x in v)}</digits>
                </value>''') for k, v in median.items())
    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" classCode="OBS" moodCode="EVN">
  <id root="2.16.840.1.113883.3.0.0.0.1"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12" codeSystemName="CPT-4"/>
  <effectiveTime><low value="20200101120000"/><high value="20200101120010"/></effectiveTime>
  <componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject><id extension="FIXTURE"/></trialSubject></subject></subjectAssignment></componentOf></timepointEvent></componentOf>
  <component>
    <series>
      <id root="2.16.840.1.113883.3.0.0.0.2"/>
      <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
      <effectiveTime><low value="20200101120000"/><high value="20200101120002.5"/></effectiveTime>
      <derivation>
        <derivedSeries>
          <code code="REPRESENTATIVE_BEAT" codeSystem="2.16.840.1.113883.5.4"/>
          <component>
            <sequenceSet>
{time_rel}
{median_leads}
            </sequenceSet>
          </component>
        </derivedSeries>
      </derivation>
      <component>
        <sequenceSet>
{time_abs}
{rhythm_leads}
        </sequenceSet>
      </component>
    </series>
  </component>
</AnnotatedECG>
'''
    leads = []
    for k in present:
        o, ou = spec[k]['origin']
        s, su = spec[k]['scale']
        leads.append(expected_entry(k, o * to_mv[ou] + digital[k] * s * to_mv[su]))
    write('hl7-aecg.xml', xml, {'fs': fs, 'leads': leads})
    # biosig returns each aECG lead in the unit of its scale, in file order.
    cross_check_with_biosig('hl7-aecg.xml', {'fs': fs, 'leads': leads}, [(k, spec[k]['scale'][1]) for k in present])


def edf():
    # EDF+C: ECG I (uV), ECG II (mV), ECG V2 (uV) at 250 Hz, Resp (Ohm) at 25 Hz, EDF Annotations; 3 records of 1 s.
    records, seconds = 3, 1
    sigs = [
        # label, dim, physmin, physmax, digmin, digmax, samples per record
        ('ECG I', 'uV', -3276.8, 3276.7, -32768, 32767, 250),
        ('ECG II', 'mV', -5.0, 5.0, -2048, 2047, 250),
        ('Resp', 'Ohm', 0, 1000, -32768, 32767, 25),
        ('ECG V2', 'uV', -8000, 8000, -32768, 32767, 250),
        ('EDF Annotations', '', -1, 1, -32768, 32767, 30),
    ]
    n = records * 250
    raw = synthetic_leads(['I', 'II', 'V2'], n, 250, 8)
    values = {}
    for label, dim, pmin, pmax, dmin, dmax, spr in sigs:
        total = records * spr
        if label.startswith('ECG'):
            phys = raw[label.split()[1]] * (1 if dim == 'uV' else 1e-3)
        elif label == 'Resp':
            phys = 500 + 100 * np.sin(np.arange(total) / 25 * 2 * np.pi * 0.25)
        else:
            values[label] = None
            continue
        digital = np.clip(np.round((phys - pmin) / (pmax - pmin) * (dmax - dmin) + dmin), dmin, dmax).astype('<i2')
        values[label] = digital

    def field(text, width):
        return text.ljust(width)[:width]

    ns = len(sigs)
    header = (field('0', 8) + field('X X X X', 80) + field('Startdate 01-JAN-2020 X X X', 80) + '01.01.20' + '12.00.00'
              + field(str(256 * (ns + 1)), 8) + field('EDF+C', 44) + field(str(records), 8) + field(str(seconds), 8) + field(str(ns), 4))
    header += ''.join(field(s[0], 16) for s in sigs)
    header += ''.join(field('AgAgCl electrode' if s[0].startswith('ECG') else '', 80) for s in sigs)
    header += ''.join(field(s[1], 8) for s in sigs)
    for col in (2, 3, 4, 5):
        header += ''.join(field(repr(s[col]) if isinstance(s[col], float) else str(s[col]), 8) for s in sigs)
    header += ''.join(field('HP:0.05Hz LP:150Hz' if s[0].startswith('ECG') else '', 80) for s in sigs)
    header += ''.join(field(str(s[6]), 8) for s in sigs)
    header += ''.join(field('', 32) for s in sigs)
    assert len(header) == 256 * (ns + 1)
    data = bytearray(header.encode('ascii'))
    for r in range(records):
        for label, dim, pmin, pmax, dmin, dmax, spr in sigs:
            if values[label] is None:
                tal = (f'+{r}\x14\x14\x00'.encode('ascii') + (b'+0.5\x14Fixture\x14\x00' if r == 0 else b'')).ljust(spr * 2, b'\x00')
                data += tal
            else:
                data += values[label][r * spr:(r + 1) * spr].tobytes()
    leads = []
    for label, dim, pmin, pmax, dmin, dmax, spr in sigs:
        if label.startswith('ECG'):
            phys = pmin + (values[label].astype(float) - dmin) * (pmax - pmin) / (dmax - dmin)
            leads.append(expected_entry(label, phys * (1e-3 if dim == 'uV' else 1)))
    write('ecg.edf', bytes(data), {'fs': 250, 'leads': leads})
    cross_check_with_biosig('ecg.edf', {'fs': 250, 'leads': leads}, [(s[0], s[1]) for s in sigs if s[0] != 'EDF Annotations'])


def dicom_expected(path, index):
    """Expected mV per channel: pydicom's raw samples, scaled as PS3.3 defines it:
    raw * ChannelSensitivity * ChannelSensitivityCorrectionFactor + ChannelBaseline (baseline in the
    sensitivity unit). pydicom 2.x's waveform_array adds the baseline before scaling (fixed in pydicom 3),
    so its scaled output is used as a cross-check only where the baseline is 0."""
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array
    ds = pydicom.dcmread(path)
    group = ds.WaveformSequence[index]
    raw = multiplex_array(ds, index, as_raw=True).astype(np.float64)
    scaled_by_pydicom = ds.waveform_array(index)
    leads = []
    for c, ch in enumerate(group.ChannelDefinitionSequence):
        unit = ch.ChannelSensitivityUnitsSequence[0].CodeValue
        if unit not in ('uV', 'mV'):
            continue  # not an ECG channel (the reader drops it)
        to_mv = {'uV': 1e-3, 'mV': 1.0}[unit]
        sensitivity = float(ch.ChannelSensitivity)
        correction = float(ch.get('ChannelSensitivityCorrectionFactor', 1.0))
        baseline = float(ch.get('ChannelBaseline', 0.0))
        physical = raw[:, c] * sensitivity * correction + baseline
        if baseline == 0:
            assert np.allclose(physical, scaled_by_pydicom[:, c]), 'pydicom scaling disagrees'
        leads.append(expected_entry(ch.ChannelSourceSequence[0].CodeMeaning, physical * to_mv))
    return {'fs': float(group.SamplingFrequency), 'group': index, 'leads': leads}


def dicom_file(sop_class, instance, groups):
    """A DICOM waveform dataset; groups: (label, originality, samples, seed, channels), channels:
    (name, scheme, code, meaning, unit code, unit meaning, sensitivity, correction, baseline)."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset('fixture', {}, file_meta=meta, preamble=b'\0' * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance
    ds.Modality = 'ECG'
    ds.PatientName = 'Fixture^Hand-written'
    items = []
    for label, originality, n, seed, channels in groups:
        g = Dataset()
        g.WaveformOriginality = originality
        g.NumberOfWaveformChannels = len(channels)
        g.NumberOfWaveformSamples = n
        g.SamplingFrequency = '500'
        g.MultiplexGroupLabel = label
        definitions = []
        for name, scheme, code, meaning, unit_code, unit_meaning, sensitivity, correction, baseline in channels:
            ch = Dataset()
            src = Dataset()
            src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = code, scheme, meaning
            ch.ChannelSourceSequence = Sequence([src])
            ch.ChannelSensitivity = sensitivity
            unit = Dataset()
            unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = unit_code, 'UCUM', unit_meaning
            ch.ChannelSensitivityUnitsSequence = Sequence([unit])
            ch.ChannelSensitivityCorrectionFactor = correction
            ch.ChannelBaseline = baseline
            ch.ChannelSampleSkew = '0'
            ch.WaveformBitsStored = 16
            definitions.append(ch)
        g.ChannelDefinitionSequence = Sequence(definitions)
        g.WaveformBitsAllocated = 16
        g.WaveformSampleInterpretation = 'SS'
        raw = synthetic_leads([c[0] for c in channels], n, 500, seed)
        g.WaveformData = np.stack([np.round(raw[c[0]] / 5.0) for c in channels], axis=1).astype('<i2').tobytes()
        items.append(g)
    ds.WaveformSequence = Sequence(items)
    return ds


def dicom():
    """12-lead ECG Waveform Storage: MEDIAN BEAT group first, RHYTHM second, mV units, sensitivity
    correction and baseline, 8 channels (no III/aVR/aVL/aVF), SCP-ECG and MDC codes; the same in
    Implicit VR; and a General ECG file with a respiration channel (Ohm) beside three leads (uV)."""
    from pydicom.uid import ImplicitVRLittleEndian
    mv = ('mV', 'millivolt', '0.005', '0.98', '0.01')
    stored = [('I', 'SCPECG', '5.6.3-9-1', 'Lead I (Einthoven)') + mv, ('II', 'MDC', '2:2', 'Lead II') + mv,
              ('V1', 'SCPECG', '5.6.3-9-3', 'Lead V1') + mv, ('V2', 'SCPECG', '5.6.3-9-4', 'Lead V2') + mv,
              ('V3', 'SCPECG', '5.6.3-9-5', 'Lead V3') + mv, ('V4', 'MDC', '2:6', 'Lead V4') + mv,
              ('V5', 'SCPECG', '5.6.3-9-7', 'Lead V5') + mv, ('V6', 'SCPECG', '5.6.3-9-8', 'Lead V6') + mv]
    ds = dicom_file('1.2.840.10008.5.1.4.1.1.9.1.1', '1.2.826.0.1.3680043.8.498.1',
                    [('MEDIAN BEAT', 'DERIVED', 600, 9, stored), ('RHYTHM', 'ORIGINAL', 1250, 10, stored)])
    path = os.path.join(OUT, 'dicom-ecg-mv.dcm')
    ds.save_as(path, write_like_original=False)
    dump_expected(path + '.expected.json', dicom_expected(path, 1))
    # The same dataset in Implicit VR Little Endian: sequences without VRs, the reader must still find them.
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(os.path.join(OUT, 'dicom-ecg-mv-implicit.dcm'), write_like_original=False)

    uv = ('uV', 'microvolt', '2.5', '1', '0')
    general = [('I', 'SCPECG', '5.6.3-9-1', 'Lead I (Einthoven)') + uv, ('II', 'SCPECG', '5.6.3-9-2', 'Lead II') + uv,
               ('Resp', '99LOCAL', 'RESP', 'Respiration', 'Ohm', 'ohm', '0.1', '1', '0'),
               ('V1', 'SCPECG', '5.6.3-9-3', 'Lead V1') + uv]
    ds = dicom_file('1.2.840.10008.5.1.4.1.1.9.1.2', '1.2.826.0.1.3680043.8.498.2', [('RHYTHM', 'ORIGINAL', 1250, 11, general)])
    path = os.path.join(OUT, 'dicom-general-ecg-resp.dcm')
    ds.save_as(path, write_like_original=False)
    dump_expected(path + '.expected.json', dicom_expected(path, 0))


def real_waveform_ecg():
    path = os.path.join(ROOT, '.cache', 'debian-test-files', 'pydicom', 'waveform_ecg.dcm')
    if not os.path.exists(path):
        print('skipping waveform_ecg.dcm (run scripts/fetch-test-files.sh first)', file=sys.stderr)
        return
    dump_expected(os.path.join(OUT, 'pydicom-waveform_ecg.expected.json'), dicom_expected(path, 0))


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    cardiosoft()
    muse()
    hl7()
    edf()
    dicom()
    real_waveform_ecg()
    print('wrote', sorted(os.listdir(OUT)))
